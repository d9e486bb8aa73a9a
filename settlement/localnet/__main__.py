"""``python -m settlement.localnet [--state-dir DIR] [--port N]``: see ``cli.py``."""

from __future__ import annotations

import argparse

from . import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m settlement.localnet", description=cli.__doc__)
    cli.configure(parser)
    return cli.run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m cx``: the same as the installed ``cx`` command."""

from cx.cli import main

raise SystemExit(main())

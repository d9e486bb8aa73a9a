"""The settlement authority's keypair: loaded from a file, created only where allowed.

The file is solana-keygen's format (a JSON array of the 64 secret-key bytes), so an
operator can create it with standard tools. On the embedded runtime the exchange creates
it when missing (mode 0600, written then renamed); on a real cluster a missing key is an
error, never silently replaced. The secret is never logged or put in a message: only the
public key is.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from solders.keypair import Keypair

from settlement.chain.errors import ChainError, ChainErrorCode


def load_authority(path: str | Path, *, create: bool = False) -> Keypair:
    """The keypair in ``path``; with ``create``, a new one written there if it is missing."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise ChainError(
                ChainErrorCode.AUTHORITY_MISSING,
                f"settlement authority key file {path} does not exist",
            )
        return _create(path)
    try:
        raw = json.loads(path.read_text())
        return Keypair.from_bytes(bytes(raw))
    except (ValueError, TypeError) as exc:
        # Say what is wrong with the file without echoing any of its content.
        raise ChainError(
            ChainErrorCode.AUTHORITY_MISSING,
            f"{path} is not a keypair file (a JSON array of 64 bytes)",
        ) from exc


def _create(path: Path) -> Keypair:
    keypair = Keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(list(bytes(keypair))))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return keypair

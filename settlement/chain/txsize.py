"""The serialized size of a legacy transaction, counted as instructions are added.

A transaction may hold at most 1232 bytes (the IPv6 MTU minus headers). Packing a batch's
transfers needs the size after each added instruction; building and serializing a whole
``Message`` every time would be quadratic, so this counts the wire format directly
(signatures, header, unique account keys, blockhash, compiled instructions). The sender
checks the real serialized bytes against the same limit.
"""

from __future__ import annotations

from solders.instruction import Instruction
from solders.pubkey import Pubkey

MAX_TX_BYTES = 1232
SIGNATURE_BYTES = 64
KEY_BYTES = 32
BLOCKHASH_BYTES = 32
HEADER_BYTES = 3


def compact_len(n: int) -> int:
    """Bytes of Solana's compact-u16 encoding of ``n``."""
    if n < 0x80:
        return 1
    if n < 0x4000:
        return 2
    return 3


def instruction_bytes(ix: Instruction) -> int:
    n_accounts = len(ix.accounts)
    data = len(ix.data)
    return 1 + compact_len(n_accounts) + n_accounts + compact_len(data) + data


class TxSizer:
    """Running size of a one-signer (the payer) legacy transaction."""

    def __init__(self, payer: Pubkey) -> None:
        self._keys: set[Pubkey] = {payer}
        self._ix_bytes = 0
        self._n_ix = 0

    def size_with(self, ixs: list[Instruction]) -> int:
        """The size if ``ixs`` were added (nothing is added)."""
        new_keys = set()
        extra = 0
        for ix in ixs:
            new_keys.add(ix.program_id)
            new_keys.update(meta.pubkey for meta in ix.accounts)
            extra += instruction_bytes(ix)
        keys = len(self._keys | new_keys)
        n_ix = self._n_ix + len(ixs)
        return (
            compact_len(1)
            + SIGNATURE_BYTES
            + HEADER_BYTES
            + compact_len(keys)
            + keys * KEY_BYTES
            + BLOCKHASH_BYTES
            + compact_len(n_ix)
            + self._ix_bytes
            + extra
        )

    def fits(self, ixs: list[Instruction], limit: int = MAX_TX_BYTES) -> bool:
        return self.size_with(ixs) <= limit

    def add(self, ixs: list[Instruction]) -> None:
        for ix in ixs:
            self._keys.add(ix.program_id)
            self._keys.update(meta.pubkey for meta in ix.accounts)
            self._ix_bytes += instruction_bytes(ix)
            self._n_ix += 1

    @property
    def size(self) -> int:
        return self.size_with([])

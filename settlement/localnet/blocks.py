"""Slots, block heights and the recent-blockhash queue of the local chain.

LiteSVM only knows one "latest" blockhash, but a real cluster accepts any blockhash of the
last 150 blocks. We keep that queue ourselves. Blockhashes are derived from the genesis hash
and the block height, so the queue can be rebuilt after a restart from two numbers.
"""

from __future__ import annotations

import hashlib

from solders.hash import Hash

MAX_PROCESSING_AGE = 150  # a blockhash is valid while height <= its height + 150
STATUS_CACHE_SLOTS = 300  # getSignatureStatuses without history searches this many slots
SLOT_HASHES_MAX = 512  # entries of the SlotHashes sysvar
_KEEP = max(SLOT_HASHES_MAX, STATUS_CACHE_SLOTS, MAX_PROCESSING_AGE + 1)


def blockhash_at(genesis: bytes, height: int) -> Hash:
    """The blockhash of the block at ``height`` (deterministic, so restarts can rebuild it)."""
    digest = hashlib.sha256(b"cx-localnet-block" + genesis + height.to_bytes(8, "little"))
    return Hash(digest.digest())


class BlockClock:
    """The current (open) block: its slot, its height and the hashes of recent blocks."""

    def __init__(self, genesis: bytes, slot: int = 0, height: int = 0) -> None:
        self.genesis = genesis
        self.slot = slot
        self.height = height
        self._heights: dict[bytes, int] = {}
        self._hashes: dict[int, Hash] = {}
        for h in range(max(0, height - _KEEP), height + 1):
            self._remember(h)

    @property
    def blockhash(self) -> Hash:
        """The hash new transactions should reference (the open block's)."""
        return self._hashes[self.height]

    @property
    def last_valid_block_height(self) -> int:
        return self.height + MAX_PROCESSING_AGE

    def advance(self, blocks: int = 1) -> None:
        """Close the open block and open the next one (``blocks`` times)."""
        for _ in range(blocks):
            self.slot += 1
            self.height += 1
            self._remember(self.height)
            self._forget(self.height - _KEEP - 1)

    def skip(self, blocks: int) -> None:
        """Jump ahead without keeping the skipped hashes (used after a crash)."""
        self.slot += blocks
        self.height += blocks
        self._heights.clear()
        self._hashes.clear()
        for h in range(max(0, self.height - _KEEP), self.height + 1):
            self._remember(h)

    def height_of(self, blockhash: bytes) -> int | None:
        """Height of a recent blockhash, or None if unknown or too old to be kept."""
        return self._heights.get(blockhash)

    def is_valid(self, blockhash: bytes) -> bool:
        """Whether a transaction referencing ``blockhash`` may still land."""
        h = self._heights.get(blockhash)
        return h is not None and self.height <= h + MAX_PROCESSING_AGE

    def slot_hashes(self) -> list[tuple[int, Hash]]:
        """SlotHashes sysvar entries, newest first (slot and height move together here)."""
        offset = self.slot - self.height
        start = max(0, self.height - SLOT_HASHES_MAX)
        return [(h + offset, self._hashes[h]) for h in range(self.height - 1, start - 1, -1)]

    def _remember(self, height: int) -> None:
        bh = blockhash_at(self.genesis, height)
        self._hashes[height] = bh
        self._heights[bytes(bh)] = height

    def _forget(self, height: int) -> None:
        bh = self._hashes.pop(height, None)
        if bh is not None:
            self._heights.pop(bytes(bh), None)

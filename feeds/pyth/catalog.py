"""Pyth's public identifiers CX uses: price feed ids and program addresses.

Feed ids are the same on every chain and in Hermes. The receiver program owns every
``PriceUpdateV2`` account (pull oracle); the oracle program owns the legacy push price accounts.
An account whose owner is not one of these is not a Pyth price, whatever its bytes say.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey


@dataclass(frozen=True, slots=True)
class Feed:
    """A Pyth price feed for one of our assets, quoted in USD."""

    asset: str  # symbol in risk.config (AssetConfig.symbol)
    pair: str
    feed_id: bytes  # 32 bytes

    @property
    def feed_hex(self) -> str:
        return self.feed_id.hex()


FEEDS: dict[str, Feed] = {
    f.asset: f
    for f in (
        Feed(
            "SOL",
            "SOL/USD",
            bytes.fromhex("ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"),
        ),
        Feed(
            "USDC",
            "USDC/USD",
            bytes.fromhex("eaa020c61cc479712813461ce153894a96a6c00b21ed0cfc2798d1f9a9e9c94a"),
        ),
    )
}

RECEIVER_PROGRAM_ID = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
# Pyth's legacy oracle program: Solana mainnet-beta, then devnet.
LEGACY_ORACLE_PROGRAM_IDS = (
    Pubkey.from_string("FsJ3A3u2vn5cTVofAjvy6y5kwABJAqYWpe4975bi2epH"),
    Pubkey.from_string("gSbePebfvPy7tRqimPoVecS2UsBvYv46ynrzWocc92s"),
)


def feed_by_id(feed_id: bytes | str) -> Feed | None:
    """The feed with this id (bytes, or hex with or without ``0x``), if it is one of ours."""
    raw = bytes.fromhex(feed_id.removeprefix("0x")) if isinstance(feed_id, str) else feed_id
    return next((f for f in FEEDS.values() if f.feed_id == raw), None)

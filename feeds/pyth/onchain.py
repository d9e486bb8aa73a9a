"""Pyth price accounts read over Solana JSON-RPC (solana-py), one path for every cluster.

The same reader serves a real cluster (mainnet PriceUpdateV2 or legacy accounts) and the
embedded local runtime the simulated publisher writes into; only the URL and the accounts
differ. Each poll is one ``getMultipleAccounts`` for every configured account, decoded by
what the bytes are (Anchor discriminator or legacy magic) and checked against their owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed
from solana.rpc.core import RPCException
from solders.pubkey import Pubkey

from feeds.pyth.accounts import (
    LEGACY_MAGIC,
    AccountDecodeError,
    decode_legacy_price,
    decode_price_update_v2,
    price_update_discriminator,
)
from feeds.pyth.catalog import FEEDS
from feeds.pyth.metrics import OracleMetrics, default_metrics
from feeds.pyth.quote import OracleQuote, PriceStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PriceAccountRef:
    """Which account holds the price of which asset."""

    asset: str
    address: Pubkey


class OnchainSource:
    """Polls Pyth price accounts; ``updates`` yields a quote whenever an account changes."""

    def __init__(
        self,
        rpc_url: str,
        accounts: Sequence[PriceAccountRef],
        *,
        interval_s: float = 0.4,
        simulated: bool = False,
        commitment: Commitment = Confirmed,
        metrics: OracleMetrics | None = None,
    ) -> None:
        if not accounts:
            raise ValueError("an on-chain oracle source needs at least one price account")
        self.name = "simulated" if simulated else "onchain"
        self.simulated = simulated
        self.accounts = list(accounts)
        self.interval_s = interval_s
        self.metrics = metrics or default_metrics()
        self._client = AsyncClient(rpc_url, commitment=commitment)

    async def poll(self) -> list[OracleQuote]:
        """The current quote of every account that holds a valid Pyth price."""
        resp = await self._client.get_multiple_accounts([a.address for a in self.accounts])
        slot = resp.context.slot
        quotes = []
        for ref, account in zip(self.accounts, resp.value, strict=True):
            if account is None:
                self._read_error("missing_account", f"{ref.asset}: {ref.address} does not exist")
                continue
            try:
                quotes.append(self._quote(ref, bytes(account.data), account.owner, slot))
            except AccountDecodeError as exc:
                self._read_error(exc.reason, f"{ref.asset} at {ref.address}: {exc}")
        return quotes

    async def updates(self) -> AsyncIterator[OracleQuote]:
        """Poll every ``interval_s``; yield each account's quote when it differs from the last."""
        last: dict[str, OracleQuote] = {}
        while True:
            try:
                quotes = await self.poll()
            except (SolanaRpcException, RPCException, OSError, ValueError) as exc:
                # transport failure, an RPC error object, or a response that did not parse
                self._read_error("rpc", f"getMultipleAccounts failed: {exc!r}")
                quotes = []
            for quote in quotes:
                if last.get(quote.asset) != quote:
                    last[quote.asset] = quote
                    yield quote
            await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        await self._client.close()

    # -- internals ---------------------------------------------------------------------------

    def _quote(self, ref: PriceAccountRef, data: bytes, owner: Pubkey, slot: int) -> OracleQuote:
        if data[:8] == price_update_discriminator():
            update = decode_price_update_v2(data, owner)
            feed = FEEDS.get(ref.asset)
            if feed is not None and update.feed_id != feed.feed_id:
                raise AccountDecodeError(
                    "feed_mismatch", f"holds feed {update.feed_id.hex()}, not {feed.pair}"
                )
            return OracleQuote(
                asset=ref.asset,
                price=update.price,
                conf=update.conf,
                expo=update.expo,
                publish_time=update.publish_time,
                status=PriceStatus.TRADING,  # the pull oracle only carries trading prices
                source=self.name,
                simulated=self.simulated,
                feed_id=update.feed_id.hex(),
                verified=update.fully_verified,
            )
        if data[:4] == LEGACY_MAGIC.to_bytes(4, "little"):
            legacy = decode_legacy_price(data, ref.address, owner=owner, slot=slot)
            return OracleQuote(
                asset=ref.asset,
                price=legacy.price,
                conf=legacy.conf,
                expo=legacy.expo,
                publish_time=legacy.publish_time,
                status=legacy.status,
                source=self.name,
                simulated=self.simulated,
            )
        raise AccountDecodeError("not_a_price_account", "neither PriceUpdateV2 nor legacy price")

    def _read_error(self, reason: str, detail: str) -> None:
        self.metrics.read_errors.labels(self.name, reason).inc()
        log.warning("oracle %s: %s", self.name, detail)

"""The life of every transaction that moves the exchange's money, kept in ``chain_txs``.

pending -> submitted (signature, last valid block height) -> confirmed | failed, or
expired -> re-signed (submitted again). The rules that make it safe:

- The signed bytes are committed to Postgres before they are sent, and the
  ``chain_activity`` counter is bumped between that commit and the send (the deposit
  watcher uses it to know that nothing new could have landed while it looked).
- The same bytes are resent until they land or their blockhash expires.
- Every transaction creates its marker account, so it can land at most once under any of
  its signatures. Whether it landed is decided by the marker when the signature status is
  not conclusive (history lost, a crash between send and confirmation, AlreadyProcessed).
- Only when the blockhash has expired and the marker does not exist is a transaction
  known never to have landed: it is re-signed, or, after ``max_signs`` program refusals,
  failed (a withdrawal's owner then releases the reserved balance).

``pump`` advances every open transaction by one step; callers loop over it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import asyncpg
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.signature import Signature

from settlement.chain import programs
from settlement.chain.context import ChainContext
from settlement.chain.direct import sign
from settlement.chain.rpc import SendKind, SendResult

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "submitted", "expired")
SEND_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    source: Pubkey
    destination: Pubkey
    asset: int
    amount: int


@dataclass
class PumpStats:
    signed: int = 0
    sent: int = 0
    resent: int = 0
    confirmed: list[int] = field(default_factory=list)  # tx ids
    failed: list[int] = field(default_factory=list)
    expired: int = 0
    open: int = 0  # still open after this step


@dataclass
class _Open:
    tx_id: int
    purpose: str
    marker: str
    memo: str
    state: str
    signature: str | None
    raw: bytes | None
    last_valid: int | None
    signs: int
    error: str | None
    wallet: str | None


async def record_tx(
    conn: asyncpg.Connection,
    *,
    purpose: str,
    marker: str,
    memo: str,
    transfers: list[PlannedTransfer],
    batch_id: int | None = None,
    part: int | None = None,
    withdrawal_id: int | None = None,
) -> int:
    """A new pending transaction (inside the caller's DB transaction)."""
    tx_id = await conn.fetchval(
        "INSERT INTO chain_txs (purpose, batch_id, part, withdrawal_id, marker, memo, state)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'pending') RETURNING tx_id",
        purpose,
        batch_id,
        part,
        withdrawal_id,
        marker,
        memo,
    )
    await conn.executemany(
        "INSERT INTO chain_transfers (tx_id, idx, source, destination, asset_id, amount)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (tx_id, i, str(t.source), str(t.destination), t.asset, t.amount)
            for i, t in enumerate(transfers)
        ],
    )
    return tx_id


class Sender:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ctx: ChainContext,
        *,
        resend_interval: float = 2.0,
        max_signs: dict[str, int] | None = None,
    ) -> None:
        self._pool = pool
        self._ctx = ctx
        self.resend_interval = resend_interval
        self.max_signs = max_signs or {"batch": 3, "withdrawal": 1}
        self._last_send: dict[int, float] = {}

    # -- instructions ------------------------------------------------------------------------

    def instructions(
        self, marker: str, memo: str, transfers: list[PlannedTransfer], wallet: str | None
    ) -> list[Instruction]:
        ctx = self._ctx
        authority = ctx.authority_key
        ixs = [
            programs.create_marker(authority, marker, ctx.marker_owner),
            programs.memo(authority, memo),
        ]
        if wallet is not None:
            owner = Pubkey.from_string(wallet)
            for mint in {ctx.mint(t.asset).address for t in transfers}:
                ixs.append(programs.create_wallet_token_account(authority, owner, mint))
        ixs += [self.transfer_ix(t) for t in transfers]
        return ixs

    def transfer_ix(self, t: PlannedTransfer) -> Instruction:
        mint = self._ctx.mint(t.asset)
        return programs.transfer(
            self._ctx.authority_key, t.source, mint.address, t.destination, t.amount, mint.decimals
        )

    def marker_address(self, marker: str) -> Pubkey:
        ctx = self._ctx
        return programs.marker_address(ctx.authority_key, marker, ctx.marker_owner)

    # -- the step ------------------------------------------------------------------------------

    async def pump(self, limit: int = 4096) -> PumpStats:
        """Sign what is pending or expired, send what this process has not sent yet (after a
        restart: everything submitted, the same bytes again), then observe every submitted
        transaction: confirm, fail, expire, or resend when due."""
        stats = PumpStats()
        txs = await self._load(limit)
        await self._sign([t for t in txs if t.state in ("pending", "expired")], stats)
        submitted = [t for t in txs if t.state == "submitted"]
        await self._send([t for t in submitted if t.tx_id not in self._last_send], stats)
        await self._observe(submitted, stats)
        stats.open = sum(1 for t in txs if t.state in OPEN_STATES)
        return stats

    async def sign_pending(self, limit: int = 4096) -> PumpStats:
        """Only the first part of ``pump``: sign and record, send nothing. (A process that
        dies right after it leaves exactly this state; tests use it to stage that crash.)"""
        stats = PumpStats()
        txs = await self._load(limit)
        await self._sign([t for t in txs if t.state in ("pending", "expired")], stats)
        return stats

    async def _load(self, limit: int) -> list[_Open]:
        rows = await self._pool.fetch(
            "SELECT t.tx_id, t.purpose, t.marker, t.memo, t.state, t.signature, t.raw,"
            " t.last_valid_block_height, t.signs, t.error, w.wallet"
            " FROM chain_txs t LEFT JOIN chain_withdrawals w USING (withdrawal_id)"
            " WHERE t.state IN ('pending', 'submitted', 'expired') ORDER BY t.tx_id LIMIT $1",
            limit,
        )
        return [_Open(*r) for r in rows]

    async def _sign(self, txs: list[_Open], stats: PumpStats) -> None:
        if not txs:
            return
        transfers = await self._transfers([t.tx_id for t in txs])
        blockhash, last_valid = await self._ctx.rpc.latest_blockhash()
        updates = []
        for t in txs:
            ixs = self.instructions(t.marker, t.memo, transfers.get(t.tx_id, []), t.wallet)
            tx = sign(self._ctx.authority, ixs, blockhash)
            t.state, t.signature, t.raw = "submitted", str(tx.signatures[0]), bytes(tx)
            t.last_valid, t.signs, t.error = last_valid, t.signs + 1, None
            updates.append((t.tx_id, t.signature, t.raw, last_valid))
            self._last_send.pop(t.tx_id, None)
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                await conn.executemany(
                    "UPDATE chain_txs SET state = 'submitted', signature = $2, raw = $3,"
                    " last_valid_block_height = $4, signs = signs + 1, error = NULL,"
                    " updated_at = now() WHERE tx_id = $1",
                    updates,
                )
                await _refresh_batches(conn, [t.tx_id for t in txs])
            # After the commit and before any send (see the module docstring).
            await conn.execute("SELECT nextval('chain_activity')")
        stats.signed += len(txs)

    async def _transfers(self, tx_ids: list[int]) -> dict[int, list[PlannedTransfer]]:
        out: dict[int, list[PlannedTransfer]] = {}
        for r in await self._pool.fetch(
            "SELECT tx_id, source, destination, asset_id, amount FROM chain_transfers"
            " WHERE tx_id = ANY($1) ORDER BY tx_id, idx",
            tx_ids,
        ):
            out.setdefault(r["tx_id"], []).append(
                PlannedTransfer(
                    Pubkey.from_string(r["source"]),
                    Pubkey.from_string(r["destination"]),
                    r["asset_id"],
                    r["amount"],
                )
            )
        return out

    async def _send(self, txs: list[_Open], stats: PumpStats, *, again: bool = False) -> None:
        if not txs:
            return
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(t: _Open) -> tuple[_Open, SendResult]:
            async with gate:
                assert t.raw is not None  # an open transaction was signed before it is sent
                return t, await self._ctx.rpc.send(t.raw)

        outcomes = await asyncio.gather(*(one(t) for t in txs), return_exceptions=True)
        results = [r for r in outcomes if not isinstance(r, BaseException)]
        now = time.monotonic()
        errors = []
        for t, result in results:
            self._last_send[t.tx_id] = now
            if result.kind is SendKind.FAILED:
                if t.error != result.error:
                    log.warning("transaction %d (%s) refused: %s", t.tx_id, t.marker, result.error)
                t.error = result.error
                errors.append((t.tx_id, result.error))
        if errors:
            await self._pool.executemany(
                "UPDATE chain_txs SET error = $2, updated_at = now() WHERE tx_id = $1", errors
            )
        await self._pool.execute(
            "UPDATE chain_txs SET sends = sends + 1 WHERE tx_id = ANY($1)",
            [t.tx_id for t, _ in results],
        )
        if again:
            stats.resent += len(results)
        else:
            stats.sent += len(results)
        for r in outcomes:
            if isinstance(r, BaseException):
                raise r  # the first failure (e.g. the node is away); the rest are recorded

    async def _observe(self, txs: list[_Open], stats: PumpStats) -> None:
        if not txs:
            return
        rpc = self._ctx.rpc
        statuses = await rpc.signature_statuses(
            [Signature.from_string(t.signature or "") for t in txs]
        )
        confirmed: list[_Open] = []
        failed: list[tuple[_Open, str]] = []
        unknown: list[_Open] = []
        for t, status in zip(txs, statuses, strict=True):
            if status is None:
                unknown.append(t)
            elif status.err is not None:
                failed.append((t, status.err))  # landed and failed: it can never land again
            elif status.confirmed:
                confirmed.append(t)
        if unknown:
            height = await rpc.block_height()
            markers = await rpc.exists([self.marker_address(t.marker) for t in unknown])
            resend = []
            expired = []
            for t, landed in zip(unknown, markers, strict=True):
                if landed:
                    confirmed.append(t)  # under this or an earlier signature
                elif t.last_valid is not None and height > t.last_valid:
                    if t.error is not None and t.signs >= self.max_signs[t.purpose]:
                        failed.append((t, t.error))
                    else:
                        expired.append(t)
                elif time.monotonic() - self._last_send.get(t.tx_id, 0.0) >= self.resend_interval:
                    resend.append(t)
            if expired:
                await self._expire(expired)
                stats.expired += len(expired)
            await self._send(resend, stats, again=True)
        if confirmed:
            await self._finish(confirmed, "confirmed")
            stats.confirmed += [t.tx_id for t in confirmed]
        if failed:
            await self._finish([t for t, _ in failed], "failed", [e for _, e in failed])
            stats.failed += [t.tx_id for t, _ in failed]

    async def _expire(self, txs: list[_Open]) -> None:
        for t in txs:
            t.state = "expired"
            self._last_send.pop(t.tx_id, None)
            log.info("transaction %d (%s) expired unlanded; re-signing", t.tx_id, t.marker)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE chain_txs SET state = 'expired', updated_at = now() WHERE tx_id = ANY($1)",
                [t.tx_id for t in txs],
            )
            await _refresh_batches(conn, [t.tx_id for t in txs])

    async def _finish(self, txs: list[_Open], state: str, errors: list[str] | None = None) -> None:
        ids = [t.tx_id for t in txs]
        async with self._pool.acquire() as conn, conn.transaction():
            if errors is None:
                await conn.execute(
                    "UPDATE chain_txs SET state = $2, updated_at = now() WHERE tx_id = ANY($1)",
                    ids,
                    state,
                )
            else:
                await conn.executemany(
                    "UPDATE chain_txs SET state = $2, error = $3, updated_at = now()"
                    " WHERE tx_id = $1",
                    [(i, state, e) for i, e in zip(ids, errors, strict=True)],
                )
            if state == "confirmed":
                await conn.execute(_APPLY_TRANSFERS, ids)
                await conn.execute(
                    "UPDATE chain_withdrawals SET state = 'completed', updated_at = now()"
                    " WHERE withdrawal_id IN (SELECT withdrawal_id FROM chain_txs"
                    " WHERE tx_id = ANY($1) AND withdrawal_id IS NOT NULL)",
                    ids,
                )
            else:
                await conn.execute(
                    "UPDATE chain_withdrawals w SET state = 'failed', error = t.error,"
                    " updated_at = now() FROM chain_txs t"
                    " WHERE t.tx_id = ANY($1) AND t.withdrawal_id = w.withdrawal_id",
                    ids,
                )
            await _refresh_batches(conn, ids)
        for t in txs:
            t.state = state
            self._last_send.pop(t.tx_id, None)


# What the chain holds by our records moves with every confirmed transfer.
_APPLY_TRANSFERS = """
UPDATE chain_vaults v SET expected = v.expected + d.delta
FROM (
    SELECT address, sum(delta) AS delta FROM (
        SELECT source AS address, -amount AS delta FROM chain_transfers WHERE tx_id = ANY($1)
        UNION ALL
        SELECT destination, amount FROM chain_transfers WHERE tx_id = ANY($1)
    ) x GROUP BY address
) d
WHERE v.address = d.address
"""

_REFRESH_BATCHES = """
UPDATE settlement_batches b
SET state = s.state,
    confirmed_at = CASE WHEN s.state = 'confirmed' THEN coalesce(b.confirmed_at, now()) END
FROM (
    SELECT batch_id,
        CASE WHEN bool_and(state = 'confirmed') THEN 'confirmed'
             WHEN bool_or(state = 'failed') THEN 'failed'
             WHEN bool_or(state = 'expired') THEN 'expired'
             WHEN bool_or(state = 'submitted') THEN 'submitted'
             ELSE 'pending' END AS state
    FROM chain_txs
    WHERE batch_id IN (SELECT batch_id FROM chain_txs WHERE tx_id = ANY($1))
    GROUP BY batch_id
) s
WHERE b.batch_id = s.batch_id AND b.state IS DISTINCT FROM s.state
"""


async def _refresh_batches(conn: asyncpg.Connection, tx_ids: list[int]) -> None:
    await conn.execute(_REFRESH_BATCHES, tx_ids)

"""Deposits: a rise of an account vault's balance becomes one ``Deposit`` command.

Only balances are watched (getMultipleAccounts), which every RPC node serves cheaply. A
vault's rise is what the chain holds beyond what our records expect (``expected``: deposits
already recognised plus confirmed transfers) and beyond transfers into it that are in
flight. The rise is credited exactly once:

1. In one Postgres transaction, the deposit is recorded as ``submitting`` with a ``ref``
   derived from (vault, deposits seen before it), and the vault's counters move past it.
2. ``Deposit(account, asset, amount, ref)`` goes to the engine.
3. Its outcome (credited or refused, with the command's seq) is recorded.

After a crash between 1 and 3, ``recover`` looks for each ``submitting`` ref in the engine's
events: found, the outcome is recorded; absent, the command never reached the journal and
is submitted again with the same ref and amount.

A poll is discarded when the ``chain_activity`` counter moved while it read the chain: a
transaction into a vault could have landed unseen by the Postgres read, and counting its
amount as a deposit would credit money twice.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import asyncpg
from solders.pubkey import Pubkey

from exchange.codes import CommandKind
from exchange.commands import Deposit
from exchange.ids import AccountId, AssetId
from settlement.chain.context import ChainContext
from settlement.chain.engine_io import (
    EngineSeq,
    EventSource,
    Submit,
    find_outcomes,
    outcomes,
    submit_command,
)

log = logging.getLogger(__name__)

MAX_DEPOSIT = 1 << 62  # the engine's largest amount (risk.kernel MAX_AMOUNT)
DEPOSIT_REF_BIT = 1 << 62  # chain deposit refs have it; withdrawal ids (also refs) never do


def deposit_ref(vault: str, seen_before: int) -> int:
    """The Deposit command's ref for the vault's next rise: positive int64, deterministic."""
    digest = hashlib.blake2b(f"{vault}:{seen_before}".encode(), digest_size=8).digest()
    return DEPOSIT_REF_BIT | (int.from_bytes(digest, "big") & (DEPOSIT_REF_BIT - 1))


@dataclass(frozen=True, slots=True)
class Credit:
    ref: int
    vault: str
    account: int
    asset: int
    amount: int
    credited: bool  # False: the engine refused it (reason)
    seq: int
    reason: int


# Per vault address: what our own transfers not yet confirmed will bring into it.
INFLOWS_IN_FLIGHT = """
SELECT tr.destination, sum(tr.amount)::bigint AS amount
FROM chain_transfers tr JOIN chain_txs t USING (tx_id)
WHERE t.state IN ('pending', 'submitted', 'expired')
GROUP BY tr.destination
"""

_OBSERVE = f"""
SELECT v.address, v.account_id, v.asset_id, v.expected, v.deposits_seen,
       coalesce(f.amount, 0) AS inflight
FROM chain_vaults v
LEFT JOIN ({INFLOWS_IN_FLIGHT}) f ON f.destination = v.address
WHERE v.kind = 'account'
ORDER BY v.address
"""


def unrecognised_rise(balance: int, expected: int, inflight: int) -> int:
    """What an account vault holds beyond our records and our own transfers in flight: a
    deposit the watcher credits at its next poll (0 when there is none)."""
    return max(0, balance - expected - inflight)


class DepositWatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ctx: ChainContext,
        submit: Submit,
        events: EventSource,
        engine_seq: EngineSeq | None = None,
    ) -> None:
        self._pool = pool
        self._ctx = ctx
        self._submit = submit
        self._events = events
        self._engine_seq = engine_seq
        self.discarded_polls = 0

    async def recover(self) -> list[Credit]:
        """Finish deposits a crash left ``submitting`` (call before the first poll)."""
        rows = await self._pool.fetch(
            "SELECT ref, vault, account_id, asset_id, amount, after_seq FROM chain_deposits"
            " WHERE state = 'submitting' ORDER BY observed_at, ref"
        )
        if not rows:
            return []
        found = await find_outcomes(
            self._events,
            CommandKind.DEPOSIT,
            {r["ref"] for r in rows},
            min(r["after_seq"] for r in rows),
            until=self._engine_seq() if self._engine_seq else None,
        )
        out = []
        for r in rows:
            outcome = found.get(r["ref"])
            if outcome is None:
                log.info("deposit ref %d was never journaled; submitting it again", r["ref"])
                out.append(
                    await self._credit(
                        r["ref"], r["vault"], r["account_id"], r["asset_id"], r["amount"]
                    )
                )
            else:
                out.append(
                    await self._record(
                        r["ref"], r["vault"], r["account_id"], r["asset_id"], r["amount"], outcome
                    )
                )
        return out

    async def poll(self) -> list[Credit]:
        """Look at every account vault once; credit each rise."""
        async with self._pool.acquire() as conn:
            before = await _activity(conn)
            rows = await conn.fetch(_OBSERVE)
        if not rows:
            return []
        balances = await self._ctx.rpc.token_balances(
            [Pubkey.from_string(r["address"]) for r in rows]
        )
        if await _activity(self._pool) != before:
            self.discarded_polls += 1
            return []
        out = []
        for r, balance in zip(rows, balances, strict=True):
            if balance is None:
                continue
            rise = unrecognised_rise(balance, r["expected"], r["inflight"])
            if rise > 0:
                # One Deposit carries at most what the engine accepts; a next poll sees the rest.
                credit = await self._recognise(r, min(rise, MAX_DEPOSIT))
                if credit is not None:
                    out.append(credit)
        return out

    async def _recognise(self, row: asyncpg.Record, amount: int) -> Credit | None:
        vault = row["address"]
        async with self._pool.acquire() as conn, conn.transaction():
            now = await conn.fetchrow(
                "SELECT expected, deposits_seen FROM chain_vaults WHERE address = $1 FOR UPDATE",
                vault,
            )
            if (now["expected"], now["deposits_seen"]) != (row["expected"], row["deposits_seen"]):
                return None  # something else moved it since the observation: look again
            ref = deposit_ref(vault, now["deposits_seen"])
            await conn.execute(
                "INSERT INTO chain_deposits (ref, vault, account_id, asset_id, amount,"
                " seen_before, state, after_seq) VALUES ($1,$2,$3,$4,$5,$6,'submitting',$7)",
                ref,
                vault,
                row["account_id"],
                row["asset_id"],
                amount,
                now["deposits_seen"],
                self._events.last_seq,
            )
            await conn.execute(
                "UPDATE chain_vaults SET expected = expected + $2,"
                " deposits_seen = deposits_seen + $2 WHERE address = $1",
                vault,
                amount,
            )
        return await self._credit(ref, vault, row["account_id"], row["asset_id"], amount)

    async def _credit(self, ref: int, vault: str, account: int, asset: int, amount: int) -> Credit:
        rows = await submit_command(
            self._submit,
            Deposit(account=AccountId(account), asset=AssetId(asset), amount=amount, ref=ref),
        )
        outcome = outcomes(rows, CommandKind.DEPOSIT, [ref])[ref]
        return await self._record(ref, vault, account, asset, amount, outcome)

    async def _record(self, ref, vault, account, asset, amount, outcome) -> Credit:
        await self._pool.execute(
            "UPDATE chain_deposits SET state = $2, seq = $3, reason = $4 WHERE ref = $1",
            ref,
            "credited" if outcome.ok else "refused",
            outcome.seq,
            None if outcome.ok else outcome.reason,
        )
        if not outcome.ok:
            log.warning("deposit of %d (asset %d) into account %d refused: code %d",
                        amount, asset, account, outcome.reason)  # fmt: skip
        return Credit(ref, vault, account, asset, amount, outcome.ok, outcome.seq, outcome.reason)


async def _activity(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[int, bool]:
    row = await conn.fetchrow("SELECT last_value, is_called FROM chain_activity")
    return row["last_value"], row["is_called"]

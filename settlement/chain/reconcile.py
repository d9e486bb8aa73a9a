"""Reconciliation: every vault's balance on chain against the Postgres ledger.

What a vault should hold on chain is its ledger balance (an account's balance, the fee
account's balance for the fee vault, the sum of the sellers' escrow for the escrow vault),
corrected for what is on one side only because the two are written at different moments:

- a deposit seen on chain whose Deposit is not in the ledger yet (+);
- a deposit landed in an account vault that the deposit watcher has not recognised yet
  (+, ``pending_deposit``): what the vault holds beyond our records (``expected``) and our
  own transfers in flight into it, the very rise the watcher credits at its next poll;
- a withdrawal debited in the ledger and not yet paid out on chain (+), or paid out and
  not yet in the ledger (-); a release puts it back in the ledger;
- fills in the ledger not yet settled on chain, or settled and not yet in the ledger
  (from the engine's event log between the ledger cursor and the settled cursor).

Anything else is a difference: money moved on chain outside the exchange (a direct
transfer or mint into a vault), a refused deposit, a failed batch, an account funded in
the engine without any chain deposit. A difference exactly equal to the flows of
transactions still in flight is reported as ``in_flight``, not as a mismatch.

The Postgres side is read in one REPEATABLE READ snapshot (the ledger and the chain tables
together); the chain is read after it, and the whole is retried when a transaction was
signed in between (the ``chain_activity`` counter).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import asyncpg
import orjson
from solders.pubkey import Pubkey

from matching import codes as mc
from risk.codes import FEE_ACCOUNT
from settlement.chain.batches import CURSOR as CHAIN_CURSOR
from settlement.chain.deposits import INFLOWS_IN_FLIGHT, unrecognised_rise
from settlement.chain.engine_io import EventSource
from settlement.chain.netting import VaultRef, net_fills
from settlement.chain.rpc import ChainRpc

LEDGER_CURSOR = "ledger"
BALANCE, ESCROW = 1, 3  # settlement.ledger.LedgerKind


@dataclass
class VaultCheck:
    address: str | None
    kind: str
    account: int | None
    asset: int
    onchain: int | None
    ledger: int
    in_transit: int  # on one side only, for timing reasons (see the module docstring)
    records: int | None  # what our chain records expect (chain_vaults.expected)
    status: str = "ok"  # ok | mismatch | in_flight | missing | no_vault
    pending_deposit: int = 0  # of in_transit: landed, not yet recognised by the watcher

    @property
    def difference(self) -> int:
        return (self.onchain or 0) - self.ledger - self.in_transit


@dataclass
class ReconcileReport:
    checked_at: str
    ledger_seq: int
    settled_seq: int
    chain_cursor: int
    vaults: list[VaultCheck]
    notes: list[str] = field(default_factory=list)
    attempts: int = 1

    @property
    def differences(self) -> list[VaultCheck]:
        return [v for v in self.vaults if v.status not in ("ok", "in_flight")]

    @property
    def pending_deposits(self) -> list[VaultCheck]:
        """Vaults holding a deposit the watcher has not credited yet (not a difference)."""
        return [v for v in self.vaults if v.pending_deposit]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict:
        def one(v: VaultCheck) -> dict:
            return {**asdict(v), "difference": v.difference}

        return {
            "ok": self.ok,
            "checked_at": self.checked_at,
            "ledger_seq": self.ledger_seq,
            "settled_seq": self.settled_seq,
            "chain_cursor": self.chain_cursor,
            "vaults_checked": len(self.vaults),
            "differences": [one(v) for v in self.differences],
            "in_flight": [one(v) for v in self.vaults if v.status == "in_flight"],
            "pending_deposits": [one(v) for v in self.pending_deposits],
            "notes": self.notes,
            "attempts": self.attempts,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)


@dataclass
class _Snapshot:
    ledger_seq: int
    chain_cursor: int
    settled_seq: int
    vaults: list[asyncpg.Record]
    ledger: dict[VaultRef, int]
    in_transit: dict[str, int]
    in_flight: dict[str, int]
    fill_range: tuple[int, int, int]  # (from, to, sign): fills (from, to] to add with sign
    notes: list[str]
    activity: tuple[int, bool]


async def reconcile(
    pool: asyncpg.Pool,
    rpc: ChainRpc,
    events: EventSource | None = None,
    *,
    attempts: int = 5,
) -> ReconcileReport:
    """Compare every vault with the ledger; see the module docstring."""
    for attempt in range(1, attempts + 1):
        snap = await _snapshot(pool)
        balances = await rpc.token_balances([Pubkey.from_string(v["address"]) for v in snap.vaults])
        after = await _activity(pool)
        if after == snap.activity or attempt == attempts:
            report = _compare(snap, balances, events)
            report.attempts = attempt
            if after != snap.activity:
                report.notes.append("transactions were signed during every attempt")
            return report
        await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


async def _activity(conn) -> tuple[int, bool]:
    row = await conn.fetchrow("SELECT last_value, is_called FROM chain_activity")
    return row["last_value"], row["is_called"]


async def _snapshot(pool: asyncpg.Pool) -> _Snapshot:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        activity = await _activity(conn)
        cursors = dict(
            await conn.fetch(
                "SELECT name, last_seq FROM projection_cursors WHERE name = ANY($1)",
                [LEDGER_CURSOR, CHAIN_CURSOR],
            )
        )
        ledger_seq = int(cursors.get(LEDGER_CURSOR, 0))
        chain_cursor = int(cursors.get(CHAIN_CURSOR, 0))
        vaults = await conn.fetch(_VAULTS)
        ledger: dict[VaultRef, int] = defaultdict(int)
        for r in await conn.fetch(
            "SELECT ledger_kind, account_id, asset_id, amount FROM balances"
            " WHERE ledger_kind = ANY($1) AND amount <> 0",
            [BALANCE, ESCROW],
        ):
            if r["ledger_kind"] == ESCROW:
                ledger[VaultRef.escrow(r["asset_id"])] += r["amount"]
            elif r["account_id"] == FEE_ACCOUNT:
                ledger[VaultRef.fee(r["asset_id"])] += r["amount"]
            else:
                ledger[VaultRef.of_account(r["account_id"], r["asset_id"])] += r["amount"]
        notes: list[str] = []
        in_transit: dict[str, int] = defaultdict(int)
        # Deposits seen on chain and not (yet) in the ledger; refused ones stay differences.
        for r in await conn.fetch(
            "SELECT d.vault, d.amount, d.state, d.ref FROM chain_deposits d"
            " WHERE NOT EXISTS (SELECT 1 FROM deposits l WHERE l.ref = d.ref"
            " AND l.asset_id = d.asset_id)"
        ):
            if r["state"] == "refused":
                notes.append(
                    f"deposit ref {r['ref']} of {r['amount']} into {r['vault']} was refused"
                )
            else:
                in_transit[r["vault"]] += r["amount"]
        # Withdrawals: chain effect (paid out) minus ledger effect (debited, released).
        for r in await conn.fetch(_WITHDRAWAL_EFFECTS):
            in_transit[r["vault"]] += r["chain"] - r["ledger"]
        settled_seq, fill_extra = await _settled(conn, chain_cursor)
        for address, delta in fill_extra.items():
            in_transit[address] += delta
        in_flight: dict[str, int] = defaultdict(int)
        for r in await conn.fetch(_IN_FLIGHT):
            in_flight[r["address"]] += r["delta"]
        for r in await conn.fetch(
            "SELECT batch_id, error FROM settlement_batches b JOIN chain_txs t USING (batch_id)"
            " WHERE b.state = 'failed' AND t.state = 'failed'"
        ):
            notes.append(f"settlement batch {r['batch_id']} failed: {r['error']}")
    lo, hi = sorted((ledger_seq, settled_seq))
    sign = 1 if settled_seq > ledger_seq else -1
    return _Snapshot(
        ledger_seq,
        chain_cursor,
        settled_seq,
        vaults,
        ledger,
        in_transit,
        in_flight,
        (lo, hi, sign),
        notes,
        activity,
    )


_VAULTS = f"""
SELECT v.address, v.kind, v.account_id, v.asset_id, v.expected,
       coalesce(f.amount, 0) AS inflows_in_flight
FROM chain_vaults v
LEFT JOIN ({INFLOWS_IN_FLIGHT}) f ON f.destination = v.address
ORDER BY v.kind, v.asset_id, v.account_id
"""

_WITHDRAWAL_EFFECTS = """
SELECT v.address AS vault,
       CASE WHEN w.state = 'completed' THEN -w.amount ELSE 0 END AS chain,
       coalesce((SELECT sum(amount)::bigint FROM deposits d
                 WHERE d.ref = w.withdrawal_id AND d.asset_id = w.asset_id), 0)
     - coalesce((SELECT sum(amount)::bigint FROM withdrawals l
                 WHERE l.ref = w.withdrawal_id AND l.asset_id = w.asset_id), 0) AS ledger
FROM chain_withdrawals w
JOIN chain_vaults v ON v.kind = 'account' AND v.account_id = w.account_id
                   AND v.asset_id = w.asset_id
WHERE w.state NOT IN ('refused', 'cancelled')
"""

# Net flows per vault of the transactions that may land at any moment.
_IN_FLIGHT = """
SELECT address, sum(delta)::bigint AS delta FROM (
    SELECT tr.source AS address, -tr.amount AS delta
    FROM chain_transfers tr JOIN chain_txs t USING (tx_id)
    WHERE t.state IN ('submitted', 'expired')
    UNION ALL
    SELECT tr.destination, tr.amount
    FROM chain_transfers tr JOIN chain_txs t USING (tx_id)
    WHERE t.state IN ('submitted', 'expired')
) x GROUP BY address
"""


async def _settled(conn: asyncpg.Connection, chain_cursor: int) -> tuple[int, dict[str, int]]:
    """The seq up to which every fill is confirmed on chain, and the confirmed transfers of
    the batches after it (their flows are on chain already)."""
    first_open = await conn.fetchrow(
        "SELECT batch_id, first_seq FROM settlement_batches WHERE state <> 'confirmed'"
        " ORDER BY batch_id LIMIT 1"
    )
    if first_open is None:
        return chain_cursor, {}
    extra: dict[str, int] = defaultdict(int)
    for r in await conn.fetch(
        "SELECT tr.source, tr.destination, tr.amount FROM chain_transfers tr"
        " JOIN chain_txs t USING (tx_id)"
        " WHERE t.batch_id >= $1 AND t.state = 'confirmed'",
        first_open["batch_id"],
    ):
        extra[r["source"]] -= r["amount"]
        extra[r["destination"]] += r["amount"]
    return first_open["first_seq"] - 1, extra


def _fill_flows(events: EventSource, lo: int, hi: int) -> dict[VaultRef, int]:
    """Net flow per vault of the fills of commands lo+1..hi."""
    out: dict[VaultRef, int] = defaultdict(int)
    seq = lo
    while seq < hi:
        rows = events.read_after(seq, 65536)
        if len(rows) == 0:
            break
        rows = rows[rows[:, mc.E_SEQ] <= hi]
        if len(rows) == 0:
            break
        for t in net_fills(rows).transfers:
            out[t.source] -= t.amount
            out[t.dest] += t.amount
        seq = int(rows[-1, mc.E_SEQ])
    return out


def _compare(
    snap: _Snapshot, balances: list[int | None], events: EventSource | None
) -> ReconcileReport:
    lo, hi, sign = snap.fill_range
    refs = {VaultRef(v["kind"], v["account_id"], v["asset_id"]): v["address"] for v in snap.vaults}
    in_transit = dict(snap.in_transit)
    notes = list(snap.notes)
    if hi > lo:
        if events is None:
            notes.append(f"fills of seq {lo + 1}-{hi} not accounted for: no event log given")
        else:
            for ref, delta in _fill_flows(events, lo, hi).items():
                address = refs.get(ref)
                if address is not None:
                    in_transit[address] = in_transit.get(address, 0) + sign * delta
    checks = []
    for v, onchain in zip(snap.vaults, balances, strict=True):
        ref = VaultRef(v["kind"], v["account_id"], v["asset_id"])
        check = VaultCheck(
            v["address"],
            v["kind"],
            v["account_id"],
            v["asset_id"],
            onchain,
            snap.ledger.get(ref, 0),
            in_transit.get(v["address"], 0),
            v["expected"],
        )
        if onchain is None:
            check.status = "missing"
        elif v["kind"] == "account":
            pending = unrecognised_rise(onchain, v["expected"], v["inflows_in_flight"])
            check.pending_deposit = pending
            check.in_transit += pending
        if onchain is not None and check.difference != 0:
            flight = snap.in_flight.get(v["address"], 0)
            check.status = "in_flight" if flight and check.difference == flight else "mismatch"
        checks.append(check)
    for ref, amount in sorted(snap.ledger.items(), key=lambda kv: str(kv[0])):
        if ref not in refs and amount:
            checks.append(
                VaultCheck(
                    None, ref.kind, ref.account, ref.asset, None, amount, 0, None, "no_vault"
                )
            )
    return ReconcileReport(
        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        snap.ledger_seq,
        snap.settled_seq,
        snap.chain_cursor,
        checks,
        notes,
    )

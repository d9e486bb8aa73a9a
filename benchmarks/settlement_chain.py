"""Chain settlement benchmark: fills settled through the local Solana runtime, netted.

    python -m benchmarks.settlement_chain [--json] [--quick]

``benchmarks.settlement`` merges ``run(quick)`` into its report. The real pieces all run:
a real engine produces the fills (pairs of crossing orders between funded buyers and
providers), the local runtime (JSON-RPC over LiteSVM) holds the vaults, and Postgres
(``CX_DATABASE_URL`` / local / embedded) keeps the batches. Setup (mints, vaults, on-chain
deposits credited by the watcher, the order flow) is untimed; the timed part is
``ChainSettlement.settle``: cut the backlog of fills into batches from the event log, net
them per vault pair, pack, sign, send and confirm every transaction.

A fill here is a trade (two ORDER_FILLED events), as in the ledger benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import harness

TARGET_FILLS_PER_S = 2_000
BUYERS, PROVIDERS, INSTRUMENTS = 64, 16, 4
REF, TICK = 2_000_000, 1_000
FUNDING = 10**12  # 1,000,000 USDC per buyer


def _order_rows(trades: int, seed: int, buyers: int, distinct: bool) -> np.ndarray:
    """``trades`` pairs: a resting sell, then a buy at the same price for the same qty;
    with ``distinct`` the i-th trade's buyer is buyer i, so no two fills can be netted."""
    from matching import codes as mc

    rng = np.random.default_rng(seed)
    rows = np.zeros((2 * trades, mc.N_COMMAND_FIELDS), dtype=np.int64)
    price = REF + rng.integers(-50, 51, size=trades) * TICK
    qty = rng.integers(1, 6, size=trades)
    instrument = rng.integers(1, INSTRUMENTS + 1, size=trades)
    for side, offset, accounts in ((2, 0, _providers()), (1, 1, _buyers(buyers))):
        part = rows[offset::2]
        part[:, mc.C_KIND] = 1  # NEW_ORDER
        part[:, mc.C_INSTRUMENT] = instrument
        part[:, mc.C_ORDER_ID] = 1 + 2 * np.arange(trades) + offset
        if distinct and side == 1:
            part[:, mc.C_ACCOUNT] = np.array(accounts)[np.arange(trades) % len(accounts)]
        else:
            part[:, mc.C_ACCOUNT] = rng.choice(accounts, size=trades)
        part[:, mc.C_SIDE] = side
        part[:, mc.C_PRICE] = price
        part[:, mc.C_QTY] = qty
        part[:, mc.C_ORDER_TYPE] = 1
        part[:, mc.C_TIF] = 1
    return rows


def _buyers(n: int = BUYERS) -> list[int]:
    return list(range(1, n + 1))


def _providers() -> list[int]:
    return list(range(1000, 1000 + PROVIDERS))


async def _fund(cs, amounts: dict[Any, int]) -> None:
    """Mint into many vaults, as many mints per transaction as fit."""
    from settlement.chain import programs
    from settlement.chain.direct import send_and_wait
    from settlement.chain.txsize import TxSizer

    ctx = cs.ctx
    mint = ctx.mint(0)
    groups: list[list] = [[]]
    sizer = TxSizer(ctx.authority_key)
    for address, amount in amounts.items():
        ix = programs.mint_to(ctx.authority_key, mint.address, address, amount, mint.decimals)
        if groups[-1] and not sizer.fits([ix]):
            groups.append([])
            sizer = TxSizer(ctx.authority_key)
        sizer.add([ix])
        groups[-1].append(ix)
    for ixs in groups:
        error = await send_and_wait(ctx.rpc, ctx.authority, ixs)
        if error is not None:
            raise RuntimeError(f"funding failed: {error}")


async def _run(
    trades: int, workdir: Path, buyers: int = BUYERS, distinct: bool = False
) -> dict[str, Any]:
    from exchange import commands as C
    from exchange.engine import Engine
    from exchange.event_log import EventLog
    from exchange.ids import AccountId, InstrumentId
    from matching import codes as mc
    from risk.codes import Role
    from settlement import db
    from settlement.chain import ChainConfig, ChainSettlement
    from settlement.chain.netting import VaultRef
    from settlement.localnet import LocalSolanaProcess
    from settlement.migrate import migrate

    node = LocalSolanaProcess(workdir / "chain")  # as cx serve runs it: its own GIL
    node.start()
    server = db.resolve_url(workdir / "pg", os.environ.get(db.ENV_URL))  # a test server
    url = await db.create_database(server, "cx_bench")
    engine = Engine.open(workdir / "engine")
    events = EventLog.open(engine.events_dir)
    pool = None
    cs = None
    try:
        await migrate(url)
        pool = await db.create_pool(url)
        cs = await ChainSettlement.open(
            pool,
            submit=engine.submit,
            events=events,
            journal_head=lambda: (engine.journal.last_seq, engine.journal.head_hash),
            engine_seq=lambda: engine.last_seq,
            config=ChainConfig(settlement_authority=workdir / "authority.json"),
            rpc_url=node.url,
            local=True,
        )
        setup: list[C.Command] = [
            C.ListInstrument(
                instrument=InstrumentId(i),
                tick_size=TICK,
                lot_size=1,
                min_price=TICK,
                max_price=10**6 * TICK,
                min_qty=1,
                max_qty=10_000,
                reference_price=REF,
            )
            for i in range(1, INSTRUMENTS + 1)
        ]
        setup += [
            C.OpenAccount(account=AccountId(a), role=Role.MARKET_MAKER) for a in _buyers(buyers)
        ]
        setup += [C.OpenAccount(account=AccountId(a), role=Role.PROVIDER) for a in _providers()]
        setup += [
            C.RegisterCapacity(account=AccountId(a), instrument=InstrumentId(i), gpu_hours=10**9)
            for a in _providers()
            for i in range(1, INSTRUMENTS + 1)
        ]
        engine.submit(C.rows(setup))
        await cs.open_accounts(_buyers(buyers) + _providers())
        vaults = [cs.vaults.get(VaultRef.of_account(b)).address for b in _buyers(buyers)]
        await _fund(cs, dict.fromkeys(vaults, FUNDING))
        credits = await cs.deposits.poll()
        if len(credits) != buyers or not all(c.credited for c in credits):
            raise RuntimeError(f"on-chain funding not credited: {credits}")
        rows = _order_rows(trades, seed=11, buyers=buyers, distinct=distinct)
        fills = 0
        for i in range(0, len(rows), 8192):
            ev = engine.submit(rows[i : i + 8192])
            fills += int((ev[:, mc.E_KIND] == 3).sum())
        if fills < 2 * trades:  # a buy can take two resting sells: more trades, never fewer
            raise RuntimeError(f"expected {trades} trades, the engine made {fills // 2}")
        trades = fills // 2
        while events.last_seq < engine.last_seq:
            await asyncio.sleep(0.01)

        started = time.perf_counter()
        await cs.settle(timeout=600)
        seconds = time.perf_counter() - started

        stats = await pool.fetchrow(
            "SELECT count(*) AS batches, sum(fills) AS fills, sum(transfers) AS transfers,"
            " sum(parts) AS txs, bool_and(state = 'confirmed') AS confirmed"
            " FROM settlement_batches"
        )
        if not stats["confirmed"] or stats["fills"] != fills:
            raise RuntimeError(f"not everything settled: {dict(stats)}")
        report = await cs.reconcile()
        return {
            "chain_fills": trades,
            "chain_fills_per_s": round(trades / seconds, 1),
            "fills_per_transaction": round(trades / stats["txs"], 1),
            "chain_transactions": int(stats["txs"]),
            "chain_transactions_per_s": round(stats["txs"] / seconds, 1),
            "chain_batches": int(stats["batches"]),
            "chain_transfers": int(stats["transfers"]),
            "chain_settle_s": round(seconds, 3),
            "chain_buyers": buyers,
            "chain_reconciled": report.ok,
            "chain_target_fills_per_s": TARGET_FILLS_PER_S,
            "chain_target_met": trades / seconds >= TARGET_FILLS_PER_S,
        }
    finally:
        if cs is not None:
            await cs.close()
        if pool is not None:
            await pool.close()
        await db.drop_database(url)
        engine.close()
        events.close()
        node.stop()


def run(quick: bool = False) -> dict[str, Any]:
    """Settle a backlog of fills through the local runtime; the figures as a dict.

    Two runs: the headline one, where 64 buyers' fills net per vault pair, and the worst
    case, where every fill has a buyer of its own so nothing nets (``chain_unnetted_*``).
    """
    trades = 20_000 if quick else 200_000
    distinct = 100 if quick else 1_000
    with tempfile.TemporaryDirectory(prefix="cx-chain-bench-") as tmp:
        result = asyncio.run(_run(trades, Path(tmp) / "netted"))
        worst = asyncio.run(_run(distinct, Path(tmp) / "unnetted", distinct, distinct=True))
    result["chain_unnetted_fills"] = worst["chain_fills"]
    result["chain_unnetted_fills_per_s"] = worst["chain_fills_per_s"]
    result["chain_unnetted_fills_per_transaction"] = worst["fills_per_transaction"]
    result["chain_unnetted_transfers"] = worst["chain_transfers"]
    result["chain_unnetted_reconciled"] = worst["chain_reconciled"]
    return result


def print_table(result: dict[str, Any]) -> None:
    harness.print_measures(
        "Chain settlement", [(key, harness.fmt(value)) for key, value in result.items()]
    )


def _from_args(args: argparse.Namespace, _progress: Callable[[str], None]) -> dict[str, Any]:
    return run(args.quick)


def main(argv: list[str] | None = None) -> int:
    return harness.main("settlement_chain", _from_args, print_table, description=__doc__, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Chain settlement against the real local Solana runtime, a real engine and real Postgres.

Each test gets its own node (state in tmp), engine (tmp), migrated database and settlement
authority. Crashes are staged by dropping a ``ChainSettlement`` at the point a process
would have died (nothing after it runs) and opening a new one over the same database,
engine and chain, as a restarted process would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import numpy as np
import orjson
import pytest
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from cx.cli import main as cli_main
from exchange import commands as C
from exchange.codes import EventKind, RejectCode
from exchange.engine import Engine
from exchange.event_log import EventLog
from matching import codes as mc
from matching.codes import Side
from risk.codes import Role
from settlement import db
from settlement.chain import ChainConfig, ChainError, ChainErrorCode, ChainSettlement, programs
from settlement.chain.deposits import DepositWatcher
from settlement.chain.direct import send_and_wait, sign
from settlement.chain.local import mint_to
from settlement.chain.netting import VaultRef
from settlement.chain.withdrawals import WithdrawalRefused
from settlement.localnet import LocalSolana

INSTRUMENT = 1
PRICE = 2_000_000  # 2 USDC per GPU-hour
USDC = 0


@dataclass
class Env:
    tmp: Path
    node: LocalSolana
    engine: Engine
    events: EventLog
    pool: asyncpg.Pool
    pg_url: str
    config: ChainConfig
    cs: ChainSettlement

    async def restart(self) -> ChainSettlement:
        """A new process over the same database, engine and chain (the old one is dropped)."""
        await self.cs.close()
        self.cs = await open_settlement(self)
        return self.cs


async def open_settlement(env: Env, submit=None) -> ChainSettlement:
    engine = env.engine
    return await ChainSettlement.open(
        env.pool,
        submit=submit or engine.submit,
        events=env.events,
        journal_head=lambda: (engine.journal.last_seq, engine.journal.head_hash),
        engine_seq=lambda: engine.last_seq,
        config=env.config,
        rpc_url=env.node.url,
        local=True,
    )


@pytest.fixture
async def env(tmp_path: Path, fresh_pg_url: str) -> AsyncIterator[Env]:
    node = LocalSolana(tmp_path / "chain")
    node.start()
    engine = Engine.open(tmp_path / "engine")
    events = EventLog.open(engine.events_dir)
    pool = await db.create_pool(fresh_pg_url)
    config = ChainConfig(
        settlement_authority=tmp_path / "authority.json",
        resend_interval_s=0.2,
        poll_interval_s=0.05,
        rpc_retry_for_s=30.0,
    )
    e = Env(tmp_path, node, engine, events, pool, fresh_pg_url, config, None)  # type: ignore[arg-type]
    try:
        e.cs = await open_settlement(e)
        yield e
    finally:
        if e.cs is not None:
            await e.cs.close()
        await pool.close()
        events.close()
        engine.close()
        e.node.stop()  # the node a test restarted, too


# -- helpers ---------------------------------------------------------------------------------------


async def market(e: Env, buyers: list[int], providers: list[int]) -> None:
    """List the instrument, open the accounts (and their vaults)."""
    cmds: list[C.Command] = [
        C.ListInstrument(
            instrument=INSTRUMENT,
            tick_size=1000,
            lot_size=1,
            min_price=1000,
            max_price=10**9,
            min_qty=1,
            max_qty=100_000,
            reference_price=PRICE,
        )
    ]
    cmds += [C.OpenAccount(account=a, role=Role.BUYER) for a in buyers]
    cmds += [C.OpenAccount(account=a, role=Role.PROVIDER) for a in providers]
    cmds += [
        C.RegisterCapacity(account=a, instrument=INSTRUMENT, gpu_hours=10_000) for a in providers
    ]
    e.engine.submit(C.rows(cmds))
    await e.cs.open_accounts(buyers + providers)


def vault(e: Env, account: int, asset: int = USDC):
    return e.cs.vaults.get(VaultRef.of_account(account, asset)).address


async def fund(e: Env, account: int, amount: int) -> None:
    """A deposit arriving on chain, credited by the watcher."""
    await mint_to(e.cs.ctx, USDC, vault(e, account), amount)
    credits = await e.cs.deposits.poll()
    assert [(c.account, c.amount, c.credited) for c in credits] == [(account, amount, True)]


async def logged_events(e: Env) -> np.ndarray:
    """Every event row, once the event log has caught up with the engine."""
    async with asyncio.timeout(60):
        while e.events.last_seq < e.engine.last_seq:
            await asyncio.sleep(0.005)
    return e.events.read_after(0, 10**7)


def engine_balance(e: Env, account: int, asset: int = USDC) -> int:
    return e.engine.core.risk.view()["balances"].get((account, asset), 0)


def trade(e: Env, buyer: int, seller: int, qty: int, order_id: int) -> np.ndarray:
    events = e.engine.submit(
        C.rows(
            [
                C.SubmitOrder(
                    instrument=INSTRUMENT,
                    order_id=order_id,
                    account=seller,
                    side=Side.SELL,
                    price=PRICE,
                    qty=qty,
                ),
                C.SubmitOrder(
                    instrument=INSTRUMENT,
                    order_id=order_id + 1,
                    account=buyer,
                    side=Side.BUY,
                    price=PRICE,
                    qty=qty,
                ),
            ]
        )
    )
    fills = events[events[:, mc.E_KIND] == EventKind.ORDER_FILLED]
    assert len(fills) == 2, "the two orders must trade"
    return fills


async def chain_balances(e: Env, refs: list[VaultRef]) -> list[int | None]:
    return await e.cs.rpc.token_balances([e.cs.vaults.get(r).address for r in refs])


def fee_of(fills: np.ndarray) -> dict[int, int]:
    return {int(r[mc.E_SIDE]): int(r[mc.E_REASON]) for r in fills}


# -- vaults ----------------------------------------------------------------------------------------


async def test_vaults_follow_opened_accounts_and_one_worker_per_database(env: Env) -> None:
    e = env
    e.engine.submit(
        C.rows(
            [
                C.OpenAccount(account=42, role=Role.BUYER),
                C.OpenAccount(account=43, role=Role.PROVIDER),
            ]
        )
    )
    await e.cs.settle()  # the settler passes the openings: their vaults exist
    for account in (42, 43):
        for asset in (0, 1):
            ref = VaultRef.of_account(account, asset)
            (data,) = await e.cs.rpc.accounts([e.cs.vaults.get(ref).address])
            assert programs.token_mint(data) == e.cs.ctx.mint(asset).address
            assert programs.token_amount(data) == 0
            assert Pubkey.from_bytes(data[32:64]) == e.cs.ctx.authority_key  # its owner
    recorded = await e.pool.fetchval(
        "SELECT count(*) FROM chain_vaults WHERE account_id = ANY($1)", [42, 43]
    )
    assert recorded == 4
    with pytest.raises(ChainError) as second:
        await open_settlement(e)
    assert second.value.code is ChainErrorCode.WORKER_RUNNING


# -- deposits --------------------------------------------------------------------------------------


async def test_deposit_credited_once_also_across_crashes(env: Env) -> None:
    e = env
    await market(e, [7], [])
    await fund(e, 7, 250_000_000)
    assert await e.cs.deposits.poll() == []  # seen once, credited once
    assert engine_balance(e, 7) == 250_000_000

    # Crash 1: the deposit is recorded, then the process dies before the engine gets it.
    def dies(rows: np.ndarray) -> np.ndarray:
        raise RuntimeError("process killed")

    await mint_to(e.cs.ctx, USDC, vault(e, 7), 40_000_000)
    watcher = DepositWatcher(e.pool, e.cs.ctx, dies, e.events, lambda: e.engine.last_seq)
    with pytest.raises(RuntimeError):
        await watcher.poll()
    assert engine_balance(e, 7) == 250_000_000

    # Crash 2: the engine journals the Deposit, the process dies before recording it.
    def journals_then_dies(rows: np.ndarray) -> np.ndarray:
        e.engine.submit(rows)
        raise RuntimeError("process killed")

    await mint_to(e.cs.ctx, USDC, vault(e, 7), 5_000_000)
    watcher = DepositWatcher(
        e.pool, e.cs.ctx, journals_then_dies, e.events, lambda: e.engine.last_seq
    )
    with pytest.raises(RuntimeError):
        await watcher.poll()
    assert engine_balance(e, 7) == 255_000_000  # only the second was journaled so far

    states = await e.pool.fetch("SELECT amount, state FROM chain_deposits ORDER BY observed_at")
    assert [(r["amount"], r["state"]) for r in states] == [
        (250_000_000, "credited"),
        (40_000_000, "submitting"),
        (5_000_000, "submitting"),
    ]

    cs = await e.restart()  # recovery: resubmits the first, finds the second in the events
    assert await cs.deposits.poll() == []
    assert engine_balance(e, 7) == 295_000_000
    refs = [r["ref"] for r in await e.pool.fetch("SELECT ref FROM chain_deposits")]
    rows = await logged_events(e)
    deposited = rows[rows[:, mc.E_KIND] == EventKind.DEPOSITED]
    assert sorted(deposited[:, mc.E_TRADE_ID].tolist()) == sorted(refs)  # each ref once
    states = await e.pool.fetch("SELECT state FROM chain_deposits")
    assert {r["state"] for r in states} == {"credited"}
    (chain,) = await chain_balances(e, [VaultRef.of_account(7)])
    assert chain == 295_000_000


# -- withdrawals -----------------------------------------------------------------------------------


async def test_withdrawal_only_to_registered_wallet_within_balance(env: Env) -> None:
    e = env
    await market(e, [7], [])
    await fund(e, 7, 100_000_000)
    wallet, stranger = Keypair().pubkey(), Keypair().pubkey()
    token_account = await e.cs.withdrawals.register_wallet(7, USDC, str(wallet))

    with pytest.raises(ChainError) as refused:
        await e.cs.withdrawals.request(7, USDC, 10_000_000, str(stranger))
    assert refused.value.code is ChainErrorCode.WALLET_NOT_REGISTERED
    with pytest.raises(WithdrawalRefused) as too_much:
        await e.cs.withdrawals.request(7, USDC, 100_000_001, str(wallet))
    assert too_much.value.reason == RejectCode.INSUFFICIENT_BALANCE
    assert engine_balance(e, 7) == 100_000_000
    assert await e.pool.fetchval("SELECT count(*) FROM chain_txs") == 0  # nothing to send

    w = await e.cs.withdrawals.request(7, USDC, 30_000_000, str(wallet))
    assert (w.state, w.destination) == ("reserved", token_account)
    assert engine_balance(e, 7) == 70_000_000  # reserved at once
    await e.cs.settle()
    assert (await e.cs.withdrawals.get(w.withdrawal_id)).state == "completed"
    paid, left = await e.cs.rpc.token_balances([Pubkey.from_string(w.destination), vault(e, 7)])
    assert (paid, left) == (30_000_000, 70_000_000)
    assert await e.cs.deposits.poll() == []  # the outflow is not mistaken for anything
    assert (await e.cs.reconcile()).ok


async def test_failed_withdrawal_is_released(env: Env) -> None:
    e = env
    await market(e, [7], [])
    await fund(e, 7, 50_000_000)
    wallet = Keypair().pubkey()
    await e.cs.withdrawals.register_wallet(7, USDC, str(wallet))
    # Money leaves the vault on chain behind the exchange's back: the payout cannot land.
    elsewhere = e.cs.vaults.get(VaultRef.fee(USDC)).address
    ctx = e.cs.ctx
    mint = ctx.mint(USDC)
    ix = programs.transfer(ctx.authority_key, vault(e, 7), mint.address, elsewhere, 45_000_000, 6)
    assert await send_and_wait(ctx.rpc, ctx.authority, [ix]) is None

    w = await e.cs.withdrawals.request(7, USDC, 20_000_000, str(wallet))
    assert engine_balance(e, 7) == 30_000_000
    report = await e.cs.step()
    assert not report.pump.confirmed
    tx = await e.pool.fetchrow("SELECT state, error FROM chain_txs")
    assert tx["state"] == "submitted" and tx["error"] is not None  # the token program refused
    e.node.advance_blocks(151)  # its blockhash expires unlanded, marker absent: final
    report = await e.cs.step()
    assert report.released == [w.withdrawal_id]
    got = await e.cs.withdrawals.get(w.withdrawal_id)
    assert got.state == "released" and got.release_seq is not None
    assert engine_balance(e, 7) == 50_000_000  # the reservation is given back
    rows = await logged_events(e)
    back = rows[
        (rows[:, mc.E_KIND] == EventKind.DEPOSITED) & (rows[:, mc.E_TRADE_ID] == w.withdrawal_id)
    ]
    assert len(back) == 1 and back[0, mc.E_QTY] == 20_000_000
    (paid,) = await e.cs.rpc.token_balances([Pubkey.from_string(got.destination)])
    assert not paid  # nothing was paid out
    await e.cs.step()
    assert await e.cs.withdrawals.release_failed() == []  # released once


# -- settlement batches ----------------------------------------------------------------------------


async def test_batch_nets_fills_and_settles_them(env: Env) -> None:
    e = env
    await market(e, [7, 9], [8])
    await fund(e, 7, 500_000_000)
    await fund(e, 9, 500_000_000)
    fills = [trade(e, 7, 8, 4, 1), trade(e, 9, 8, 3, 3), trade(e, 7, 8, 5, 5)]
    await e.cs.settle()
    batches = await e.pool.fetch("SELECT * FROM settlement_batches")
    assert len(batches) == 1
    b = batches[0]
    assert (b["fills"], b["transfers"], b["parts"], b["state"]) == (6, 4, 1, "confirmed")
    assert b["head_hash"] == e.engine.journal.head_hash.hex()
    paid = {7: 0, 9: 0}
    escrow = fee = 0
    for f, buyer in zip(fills, (7, 9, 7), strict=True):
        fees = fee_of(f)
        notional = PRICE * int(f[0, mc.E_QTY])
        paid[buyer] += notional + fees[Side.BUY]
        escrow += notional - fees[Side.SELL]
        fee += fees[Side.BUY] + fees[Side.SELL]
    onchain = await chain_balances(
        e, [VaultRef.of_account(7), VaultRef.of_account(9), VaultRef.escrow(), VaultRef.fee()]
    )
    assert onchain == [500_000_000 - paid[7], 500_000_000 - paid[9], escrow, fee]
    assert engine_balance(e, 7) == onchain[0] and engine_balance(e, 0) == fee
    # The memo anchors the batch id and the journal head on chain.
    sig = await e.pool.fetchval("SELECT signature FROM chain_txs")
    resp = await e.cs.rpc._client.get_transaction(Signature.from_string(sig))
    logs = "\n".join(resp.value.transaction.meta.log_messages)
    assert f"cx settle batch={b['batch_id']} part=0" in logs and b["head_hash"] in logs


async def test_batch_too_large_for_one_transaction_is_split(env: Env) -> None:
    e = env
    buyers = list(range(100, 130))
    await market(e, buyers, [8])
    for b in buyers:
        await mint_to(e.cs.ctx, USDC, vault(e, b), 10_000_000)
    assert len(await e.cs.deposits.poll()) == len(buyers)
    for i, b in enumerate(buyers):
        trade(e, b, 8, 1 + i % 3, 10 * i + 1)
    await e.cs.settle()
    b = await e.pool.fetchrow("SELECT * FROM settlement_batches")
    assert b["state"] == "confirmed" and b["parts"] > 1 and b["transfers"] == 2 * len(buyers)
    txs = await e.pool.fetch(
        "SELECT part, marker, octet_length(raw) AS size, state FROM chain_txs ORDER BY part"
    )
    assert [t["part"] for t in txs] == list(range(b["parts"]))
    assert txs[0]["marker"] == f"batch:{b['batch_id']}"
    assert [t["marker"] for t in txs[1:]] == [
        f"batch:{b['batch_id']}:{k}" for k in range(1, len(txs))
    ]
    assert all(t["size"] <= 1232 and t["state"] == "confirmed" for t in txs)
    onchain = await chain_balances(e, [VaultRef.of_account(x) for x in buyers])
    assert onchain == [engine_balance(e, x) for x in buyers]


async def test_batch_retried_after_crash_between_send_and_confirmation_moves_once(
    env: Env,
) -> None:
    e = env
    await market(e, [7], [8])
    await fund(e, 7, 100_000_000)
    trade(e, 7, 8, 10, 1)
    await e.cs.settler.cut()
    await e.cs.sender.sign_pending()
    row = await e.pool.fetchrow("SELECT tx_id, raw, marker, memo FROM chain_txs")
    assert (await e.cs.rpc.send(row["raw"])).kind.value == "sent"  # ... and the process dies
    e.node.advance_blocks(2)
    after_first = await chain_balances(e, [VaultRef.of_account(7), VaultRef.escrow()])
    assert after_first[0] < 100_000_000

    cs = await e.restart()
    await cs.settle()  # resends the same bytes (AlreadyProcessed), finds them landed
    tx = await e.pool.fetchrow("SELECT state, signs, sends FROM chain_txs")
    assert (tx["state"], tx["signs"]) == ("confirmed", 1) and tx["sends"] >= 1
    assert await chain_balances(e, [VaultRef.of_account(7), VaultRef.escrow()]) == after_first

    # A re-signed copy (same marker, new blockhash) fails atomically: nothing moves twice.
    transfers = await cs.sender._transfers([row["tx_id"]])
    ixs = cs.sender.instructions(row["marker"], row["memo"], transfers[row["tx_id"]], None)
    blockhash, _ = await cs.rpc.latest_blockhash()
    result = await cs.rpc.send(bytes(sign(cs.ctx.authority, ixs, blockhash)))
    assert result.kind.value == "failed", result
    assert any("already in use" in line for line in result.logs)  # the marker refused it
    e.node.advance_blocks(2)
    assert await chain_balances(e, [VaultRef.of_account(7), VaultRef.escrow()]) == after_first
    assert engine_balance(e, 7) == after_first[0]


async def test_expired_blockhash_leads_to_a_resigned_batch_that_lands_once(env: Env) -> None:
    e = env
    await market(e, [7], [8])
    await fund(e, 7, 100_000_000)
    trade(e, 7, 8, 10, 1)
    await e.cs.settler.cut()
    await e.cs.sender.sign_pending()  # signed and recorded; the process dies before sending
    first = await e.pool.fetchrow("SELECT signature, last_valid_block_height FROM chain_txs")
    e.node.advance_blocks(151)  # that blockhash is now too old

    cs = await e.restart()
    await cs.settle()
    tx = await e.pool.fetchrow("SELECT state, signs, signature FROM chain_txs")
    assert tx["state"] == "confirmed" and tx["signs"] == 2
    assert tx["signature"] != first["signature"]
    (old,) = await cs.rpc.signature_statuses([Signature.from_string(first["signature"])])
    assert old is None  # the first signature never landed
    onchain = await chain_balances(e, [VaultRef.of_account(7), VaultRef.escrow(), VaultRef.fee()])
    assert onchain[0] == engine_balance(e, 7)  # paid once
    assert onchain[1] + onchain[2] == 100_000_000 - onchain[0]
    assert (await e.pool.fetchval("SELECT state FROM settlement_batches")) == "confirmed"


# -- reconciliation --------------------------------------------------------------------------------


async def test_reconciliation_finds_a_difference_injected_on_chain(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    from settlement.projector import LedgerProjector

    e = env
    await market(e, [7], [8])
    await fund(e, 7, 100_000_000)
    trade(e, 7, 8, 10, 1)
    await e.cs.settle()
    # The chain ahead of the ledger (nothing projected yet): deposit and fills in transit.
    report = await e.cs.reconcile()
    assert report.ok and report.ledger_seq == 0 < report.settled_seq
    await LedgerProjector(e.events, e.pg_url).catch_up()
    assert (await e.cs.reconcile()).ok

    # Fills the ledger has and the chain does not yet: in transit, not a difference.
    trade(e, 7, 8, 2, 3)
    await LedgerProjector(e.events, e.pg_url).catch_up()
    report = await e.cs.reconcile()
    assert report.ok and report.ledger_seq > report.settled_seq
    await e.cs.settle()

    # Tokens minted straight into the escrow vault are a difference.
    escrow = e.cs.vaults.get(VaultRef.escrow()).address
    await mint_to(e.cs.ctx, USDC, escrow, 1_234)
    report = await e.cs.reconcile()
    assert not report.ok
    assert [(d.kind, d.difference) for d in report.differences] == [("escrow", 1_234)]

    # The operator command says the same: JSON, exit code 1; then plain text.
    argv = ["reconcile", "--url", e.pg_url, "--rpc-url", e.node.url]
    argv += ["--events", str(e.engine.events_dir)]
    assert await asyncio.to_thread(cli_main, [*argv, "--json"]) == 1
    out = orjson.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert [(d["kind"], d["difference"]) for d in out["differences"]] == [("escrow", 1_234)]
    assert out["differences"][0]["address"] == str(escrow)
    assert await asyncio.to_thread(cli_main, argv) == 1
    text = capsys.readouterr().out
    assert "1 DIFFERENCE(S)" in text and str(escrow) in text and "+1234" in text


async def test_a_deposit_landed_before_the_watcher_credits_it_is_pending_not_a_mismatch(
    env: Env,
) -> None:
    """Right after start the demo buyer's deposit is on chain and the watcher has not polled
    yet: reconciliation reports it as a pending deposit (in transit), not as a difference.
    A real difference next to it is still reported as one."""
    from settlement.projector import LedgerProjector

    e = env
    await market(e, [7], [8])
    await fund(e, 7, 100_000_000)
    await LedgerProjector(e.events, e.pg_url).catch_up()
    assert (await e.cs.reconcile()).ok

    await mint_to(e.cs.ctx, USDC, vault(e, 7), 10**12)  # landed; the watcher has not looked
    report = await e.cs.reconcile()
    assert report.ok and report.differences == []
    (check,) = report.pending_deposits
    assert (check.account, check.asset, check.onchain, check.ledger) == (
        7, USDC, 10**12 + 100_000_000, 100_000_000,
    )  # fmt: skip
    assert (check.pending_deposit, check.in_transit, check.status) == (10**12, 10**12, "ok")
    out = report.to_dict()
    assert out["ok"] is True
    assert [(d["account"], d["pending_deposit"]) for d in out["pending_deposits"]] == [(7, 10**12)]

    # A real difference beside it: account 8 credited in the engine with no chain deposit.
    e.engine.submit(C.rows([C.Deposit(account=8, asset=USDC, amount=5_000_000, ref=99)]))
    await LedgerProjector(e.events, e.pg_url).catch_up()
    report = await e.cs.reconcile()
    assert not report.ok
    assert [(d.account, d.difference, d.status) for d in report.differences] == [
        (8, -5_000_000, "mismatch")
    ]
    assert [v.account for v in report.pending_deposits] == [7]  # still pending, not a mismatch

    # The watcher credits the deposit, the ledger follows: nothing pending any more.
    credits = await e.cs.deposits.poll()
    assert [(c.account, c.amount, c.credited) for c in credits] == [(7, 10**12, True)]
    await LedgerProjector(e.events, e.pg_url).catch_up()
    report = await e.cs.reconcile()
    assert report.pending_deposits == []
    assert [(d.account, d.difference) for d in report.differences] == [(8, -5_000_000)]
    assert engine_balance(e, 7) == 10**12 + 100_000_000


# -- RPC failures ----------------------------------------------------------------------------------


async def test_rpc_outage_is_retried_and_nothing_is_lost(env: Env) -> None:
    e = env
    await market(e, [7], [8])
    await fund(e, 7, 100_000_000)
    port = int(e.node.url.rsplit(":", 1)[1])
    await mint_to(e.cs.ctx, USDC, vault(e, 7), 1_000_000)  # arrives just before the outage
    trade(e, 7, 8, 5, 1)
    e.node.stop()
    before = e.cs.rpc.retries
    task = asyncio.create_task(e.cs.settle(timeout=60))
    async with asyncio.timeout(60):
        while e.cs.rpc.retries < before + 3 and not task.done():  # retrying with backoff
            await asyncio.sleep(0.05)
    assert not task.done(), task.exception()
    e.node = LocalSolana(e.tmp / "chain", port=port)
    e.node.start()
    await task
    assert engine_balance(e, 7) == (await chain_balances(e, [VaultRef.of_account(7)]))[0]
    assert await e.pool.fetchval("SELECT state FROM settlement_batches") == "confirmed"
    credited = await e.pool.fetchval("SELECT sum(amount) FROM chain_deposits")
    assert credited == 101_000_000


async def test_unreachable_node_gives_up_after_the_retry_budget(env: Env) -> None:
    from settlement.chain.errors import ChainUnavailable
    from settlement.chain.rpc import Backoff, ChainRpc

    # A port that accepts connections and never answers: every call times out.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rpc = ChainRpc(f"http://127.0.0.1:{port}", timeout=0.2, backoff=Backoff(0.01, 0.05, 1.0))
    try:
        with pytest.raises(ChainUnavailable):
            await rpc.block_height()
        assert rpc.retries >= 2
    finally:
        await rpc.close()
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
    assert await env.cs.rpc.block_height() > 0  # the real node still answers


# -- the server's loop -----------------------------------------------------------------------------


async def until(condition, what: str) -> None:
    """Wait for ``condition()`` (async); a generous bound only so a bug cannot hang the run."""
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def test_run_loop_credits_settles_and_reconciles(env: Env) -> None:
    e = env
    e.engine.submit(
        C.rows(
            [
                C.OpenAccount(account=7, role=Role.BUYER),
                C.OpenAccount(account=8, role=Role.PROVIDER),
            ]
        )
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(e.cs.run(stop, reconcile_every=0.1))
    try:

        async def vault_exists() -> bool:
            try:
                vault(e, 7)
            except ChainError:
                return False
            return True

        await until(vault_exists, "the loop creates the vaults of opened accounts")
        e.engine.submit(
            C.rows(
                [
                    C.ListInstrument(
                        instrument=INSTRUMENT,
                        tick_size=1000,
                        lot_size=1,
                        min_price=1000,
                        max_price=10**9,
                        min_qty=1,
                        max_qty=100_000,
                        reference_price=PRICE,
                    ),
                    C.RegisterCapacity(account=8, instrument=INSTRUMENT, gpu_hours=100),
                ]
            )
        )
        await mint_to(e.cs.ctx, USDC, vault(e, 7), 80_000_000)

        async def credited() -> bool:
            return engine_balance(e, 7) == 80_000_000

        await until(credited, "the deposit is credited")
        trade(e, 7, 8, 6, 1)

        async def settled() -> bool:
            state = await e.pool.fetchval("SELECT state FROM settlement_batches")
            return state == "confirmed"

        await until(settled, "the fills are settled")

        async def reconciled() -> bool:
            r = e.cs.last_reconcile
            return r is not None and r.settled_seq >= e.engine.last_seq and r.ok

        await until(reconciled, "a reconciliation after the settlement agrees")
    finally:
        stop.set()
        await asyncio.wait_for(loop, 60)
    (onchain,) = await chain_balances(e, [VaultRef.of_account(7)])
    assert onchain == engine_balance(e, 7) < 80_000_000

"""Netting and transaction sizing, without a chain: checked against the engine itself.

The netted transfers of a realistic order flow must move, per vault, exactly what the
engine's risk state moved: each buyer's balance, the instruments' escrow, the fee account.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from exchange.engine import Engine
from exchange.event_log import EventLog
from matching import codes as mc
from risk import codes as rc
from settlement.chain import ChainError, ChainErrorCode, programs
from settlement.chain.direct import sign
from settlement.chain.netting import VaultRef, flows, net_fills
from settlement.chain.txsize import TxSizer
from tests.exchange import flow


def test_netted_flows_equal_the_engines_own_bookkeeping(tmp_path: Path) -> None:
    engine = Engine.open(tmp_path / "engine")
    try:
        engine.submit(flow.setup_rows())
        for rows in flow.batches(flow.order_rows(30_000, seed=7), 4096):
            engine.submit(rows)
        state = engine.core.risk
        view = state.view()
    finally:
        engine.close()  # the event log is complete once the engine is closed
    netted = net_fills(EventLog.open(tmp_path / "engine" / "events").read_after(0, 10**7))
    assert netted.fills > 1000, "the flow must trade"
    moved = flows(netted.transfers)
    assert sum(moved.values()) == 0
    for buyer in flow.BUYERS:
        paid = view["balances"].get((buyer, 0), 0) - 10**15
        assert moved.get(VaultRef.of_account(buyer), 0) == paid
    escrow = int(state.instruments[:, rc.I_ESCROW].sum())
    assert moved[VaultRef.escrow()] == escrow
    assert moved[VaultRef.fee()] == view["balances"].get((rc.FEE_ACCOUNT, 0), 0)
    # At most two transfers per buyer, and sellers' proceeds stay in escrow.
    assert len(netted.transfers) <= 2 * len(flow.BUYERS)
    assert all(t.source.kind == "account" and t.amount > 0 for t in netted.transfers)


def test_netting_in_chunks_moves_the_same_as_at_once(tmp_path: Path) -> None:
    engine = Engine.open(tmp_path / "engine")
    try:
        engine.submit(flow.setup_rows())
        engine.submit(flow.order_rows(5_000, seed=3))
    finally:
        engine.close()
    events = EventLog.open(tmp_path / "engine" / "events").read_after(0, 10**7)
    whole = flows(net_fills(events).transfers)
    cuts = np.unique(events[:, mc.E_SEQ])[::97]
    chunks: dict[VaultRef, int] = {}
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, events[-1, mc.E_SEQ]], strict=True):
        part = events[(events[:, mc.E_SEQ] > lo) & (events[:, mc.E_SEQ] <= hi)]
        for ref, amount in flows(net_fills(part).transfers).items():
            chunks[ref] = chunks.get(ref, 0) + amount
    assert {k: v for k, v in chunks.items() if v} == {k: v for k, v in whole.items() if v}


def test_counted_size_equals_the_serialized_transaction() -> None:
    rng = np.random.default_rng(1)
    authority = Keypair()
    key = authority.pubkey()
    mint = Pubkey.new_unique()
    owner = programs.marker_owner(key, "0123456789abcdef")
    vaults = [Pubkey.new_unique() for _ in range(40)]
    outcomes = {"fits": 0, "too_large": 0}
    for trial in range(50):
        ixs = [
            programs.create_marker(key, f"batch:{trial}", owner),
            programs.memo(key, "x" * int(rng.integers(1, 200))),
        ]
        for _ in range(int(rng.integers(0, 25))):
            a, b = rng.choice(len(vaults), 2, replace=False)
            ixs.append(programs.transfer(key, vaults[a], mint, vaults[b], 10**6, 6))
        sizer = TxSizer(key)
        sizer.add(ixs)
        try:
            actual = len(bytes(sign(authority, ixs, Hash.default())))
        except ChainError as exc:  # too large to sign: the counted size must say so too
            assert exc.code is ChainErrorCode.TRANSACTION_TOO_LARGE and sizer.size > 1232
            outcomes["too_large"] += 1
            continue
        assert sizer.size == actual <= 1232
        outcomes["fits"] += 1
    assert min(outcomes.values()) > 0  # both cases were exercised


def test_transfer_instruction_is_spl_tokens_transfer_checked() -> None:
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import TransferCheckedParams, transfer_checked

    a, source, mint, dest = (Pubkey.new_unique() for _ in range(4))
    for amount, decimals in ((1, 6), (123_456_789, 6), ((1 << 64) - 1, 9)):
        ours = programs.transfer(a, source, mint, dest, amount, decimals)
        theirs = transfer_checked(
            TransferCheckedParams(TOKEN_PROGRAM_ID, source, mint, dest, a, amount, decimals)
        )
        assert ours == theirs

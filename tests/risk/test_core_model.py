"""The compiled core against the plain-Python model, and the money invariants.

Random mixes of every command over several accounts and two instruments run through
``ExchangeCore`` (numba risk + numba book) and ``ReferenceCore`` (RiskModel +
ReferenceBook) in batches; after each batch the events and the risk state must be
identical and the invariants must hold: each asset's total is conserved (deposits and
withdrawals are the only ways in and out), escrow equals what sellers are owed,
reservations equal what the open orders require, nothing goes negative that must not.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from exchange import commands as C
from exchange.core import ExchangeCore
from exchange.queries import OpenOrder
from exchange.reference_core import ReferenceCore
from matching import codes as mc
from matching.codes import OrderType, Side, STPMode, TimeInForce
from risk.codes import InstrumentState, RiskEventKind, Role
from risk.config import RiskConfig
from risk.reference import RiskModel

SEC = 1_000_000_000
T0 = 1_800_000_000 * SEC
TICK = 1_000
ACCOUNTS = (1, 2, 3, 4)
ROLES = {1: Role.BUYER, 2: Role.PROVIDER, 3: Role.MARKET_MAKER, 4: Role.PROVIDER}
INSTRUMENTS = (1, 2)
REF = 2_000_000
CONFIG = RiskConfig(price_band_bps=3_000)

prices = st.integers(1_500, 2_500).map(lambda t: t * TICK)
qtys = st.integers(1, 30)
accounts = st.sampled_from(ACCOUNTS + ACCOUNTS + (9,))  # 9 is never opened
instruments = st.sampled_from(INSTRUMENTS * 3 + (7,))  # 7 is never listed


@st.composite
def submit(draw: st.DrawFn) -> C.Command:
    tif = draw(st.sampled_from(list(TimeInForce)))
    market = tif in (TimeInForce.IOC, TimeInForce.FOK) and draw(st.booleans())
    return C.SubmitOrder(
        instrument=draw(instruments),
        order_id=draw(st.integers(1, 60)),
        account=draw(accounts),
        side=draw(st.sampled_from(list(Side))),
        price=draw(prices),
        qty=draw(qtys),
        order_type=OrderType.MARKET if market else OrderType.LIMIT,
        tif=tif,
        stp=draw(st.sampled_from(list(STPMode))),
        expire_ts=draw(st.integers(-1, 40)) * SEC if tif == TimeInForce.GTD else 0,  # from now
    )


refs = st.integers(-(2**63), 2**63 - 1)  # any caller reference is echoed as it is


def other_commands() -> st.SearchStrategy[C.Command]:
    return st.one_of(
        st.builds(
            C.CancelOrder, instrument=instruments, order_id=st.integers(1, 60), account=accounts
        ),
        st.builds(
            C.ReplaceOrder,
            instrument=instruments,
            order_id=st.integers(1, 60),
            account=accounts,
            price=prices,
            qty=qtys,
        ),
        st.builds(C.MassCancel, instrument=instruments, account=accounts),
        st.builds(C.AdvanceClock),
        st.builds(
            C.Deposit,
            account=accounts,
            asset=st.integers(0, 2),
            amount=st.integers(-5, 5 * 10**8),
            ref=refs,
        ),
        st.builds(
            C.Withdraw,
            account=accounts,
            asset=st.integers(0, 1),
            amount=st.integers(1, 3 * 10**8),
            ref=refs,
        ),
        st.builds(
            C.SetOraclePrice,
            asset=st.integers(0, 1),
            price=st.integers(1, 300).map(lambda p: p * 10**8),
            conf=st.integers(0, 10**8),
            expo=st.just(-8),
            publish_time=st.integers(1_799_999_990, 1_800_000_100),
            status=st.sampled_from((1, 1, 1, 0)),
        ),
        st.builds(
            C.RegisterCapacity,
            account=accounts,
            instrument=instruments,
            gpu_hours=st.integers(-1, 50),
        ),
        st.builds(
            C.SetLimits,
            account=accounts,
            max_order_qty=st.integers(0, 40),
            max_order_notional=st.integers(1, 80).map(lambda n: n * 10**6),
            max_open_orders=st.integers(0, 6),
            max_position=st.integers(0, 80),
        ),
        st.builds(C.SetKillSwitch, on=st.booleans(), account=st.sampled_from((1, 2, 3, 9))),
        st.builds(C.SetKillSwitch, on=st.sampled_from((False, False, False, True))),
        st.builds(
            C.SetInstrumentStatus,
            instrument=st.sampled_from((2, 7)),  # instrument 1 stays listed for trading
            status=st.sampled_from([InstrumentState.TRADING] * 4 + list(InstrumentState)),
        ),
    )


commands = st.one_of(submit(), submit(), submit(), submit(), submit(), other_commands())


class CoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fast = ExchangeCore(CONFIG)
        self.ref = ReferenceCore(CONFIG)
        self.seq = 0
        self.now = T0
        self.net_in: defaultdict[int, int] = defaultdict(int)  # deposits - withdrawals

    def run(self, cmds: list[C.Command], advance: int = 0) -> None:
        self.now += advance
        rows = C.rows(cmds, self.seq + 1, self.now)
        gtd = rows[:, mc.C_TIF] == TimeInForce.GTD
        rows[gtd, mc.C_EXPIRE_TS] += self.now  # GTD expiries are drawn relative to now
        self.seq += len(cmds)
        fast = self.fast.process(rows)
        ref = self.ref.process(rows)
        assert fast.tolist() == ref.tolist()
        for e in fast:
            if e[mc.E_KIND] == RiskEventKind.DEPOSITED:
                self.net_in[int(e[mc.E_INSTRUMENT])] += int(e[mc.E_QTY])
            elif e[mc.E_KIND] == RiskEventKind.WITHDRAWN:
                self.net_in[int(e[mc.E_INSTRUMENT])] -= int(e[mc.E_QTY])

    @initialize()
    def setup(self) -> None:
        lst = [
            C.ListInstrument(
                instrument=i,
                tick_size=TICK,
                lot_size=1,
                min_price=TICK,
                max_price=1_000_000 * TICK,
                min_qty=1,
                max_qty=1_000,
                reference_price=REF,
            )
            for i in INSTRUMENTS
        ]
        # instrument 2's window reaches its trading cut-off during a long run
        lst[1] = C.ListInstrument(
            instrument=2,
            tick_size=TICK,
            lot_size=1,
            min_price=TICK,
            max_price=10**6 * TICK,
            min_qty=1,
            max_qty=1_000,
            reference_price=REF,
            cutoff_ts=T0 + 40 * SEC,
        )
        opened = [C.OpenAccount(account=a, role=ROLES[a]) for a in ACCOUNTS]
        money = [C.Deposit(account=a, asset=0, amount=200 * 10**6) for a in ACCOUNTS]
        cap = [
            C.RegisterCapacity(account=a, instrument=i, gpu_hours=100)
            for a in (2, 4)
            for i in INSTRUMENTS
        ]
        oracle = [
            C.SetOraclePrice(
                asset=1, price=150 * 10**8, conf=10**7, expo=-8, publish_time=T0 // SEC
            )
        ]
        self.run(
            lst + opened + money + cap + oracle + [C.Deposit(account=3, asset=1, amount=2 * 10**9)]
        )

    @rule(batch=st.lists(commands, min_size=1, max_size=12), advance=st.integers(0, 5 * SEC))
    def step(self, batch: list[C.Command], advance: int) -> None:
        self.run(batch, advance)

    @invariant()
    def same_state(self) -> None:
        assert self.fast.risk.view() == self.ref.risk.view()
        assert self.fast.book.state_hash() == self.ref.book.state_hash()

    @invariant()
    def money_is_conserved(self) -> None:
        view = self.ref.risk.view()
        totals: defaultdict[int, int] = defaultdict(int)
        for (_acct, k), v in view["balances"].items():
            totals[k] += v
        totals[0] += sum(ins[3] for ins in view["instruments"].values())
        for k in range(len(CONFIG.assets)):
            assert totals[k] == self.net_in[k], f"asset {k} not conserved"

    @invariant()
    def escrow_is_owed_to_sellers(self) -> None:
        view = self.ref.risk.view()
        owed: defaultdict[int, int] = defaultdict(int)
        for (_acct, instr), p in view["positions"].items():
            owed[instr] += p[5]
        for instr, ins in view["instruments"].items():
            assert ins[3] == owed[instr]

    @invariant()
    def reservations_match_open_orders(self) -> None:
        model = self.ref.risk
        reserved: defaultdict[int, int] = defaultdict(int)
        opened: defaultdict[int, int] = defaultdict(int)
        sell: defaultdict[tuple[int, int], int] = defaultdict(int)
        buy: defaultdict[tuple[int, int], int] = defaultdict(int)
        for o in map(OpenOrder.from_row, self.ref.book.snapshot().orders):
            opened[o.account] += 1
            if o.side == Side.BUY:
                reserved[o.account] += model.reserve_for(o.price, o.leaves)
                buy[(o.account, o.instrument)] += o.leaves
            else:
                sell[(o.account, o.instrument)] += o.leaves
        for acct, a in model.accounts.items():
            assert a.reserved == reserved[acct]
            assert a.open_orders == opened[acct]
        for key, p in model.positions.items():
            assert p.inv_reserved == sell[key] == p.open_sell
            assert p.open_buy == buy[key]
            assert 0 <= p.inv_reserved <= p.inventory

    @invariant()
    def queries_agree(self) -> None:
        """The engine's queries read the compiled core; the reference core answers them
        from its own dictionaries."""
        for instr in (0, *INSTRUMENTS, 7):
            assert self.fast.instrument_status(instr) == self.ref.instrument_status(instr)
        for acct in (0, *ACCOUNTS, 9):
            assert self.fast.reservations(acct) == self.ref.reservations(acct)
            assert self.fast.account_orders(acct) == self.ref.account_orders(acct)
            for instr in (*INSTRUMENTS, 7):
                mine = self.fast.account_orders(acct, instr)
                assert mine == self.ref.account_orders(acct, instr)
                assert all(o.account == acct and o.instrument == instr for o in mine)
        for oid in range(62):
            assert self.fast.order(oid) == self.ref.order(oid)

    @invariant()
    def available_is_what_a_withdrawal_is_granted(self) -> None:
        model = self.ref.risk
        for acct in (0, *ACCOUNTS):
            balances = self.fast.balances(acct)
            assert balances is not None
            assert [b.asset for b in balances] == list(range(len(CONFIG.assets)))
            for b in balances:
                assert b.total == model.balances[(acct, b.asset)]
                assert b.reserved == max(b.total - b.available, 0) and b.available >= 0
                if b.available:
                    assert _granted(model, acct, b.asset, b.available, self.ref)
                assert not _granted(model, acct, b.asset, b.available + 1, self.ref)
        assert self.fast.balances(9) is None

    @invariant()
    def nothing_negative(self) -> None:
        model = self.ref.risk
        balances = dict(model.balances)
        for (acct, k), v in balances.items():
            if k != 0:
                assert v >= 0
            elif acct == 0 or not any(balances.get((acct, j)) for j in range(1, 3)):
                # without other collateral, USDC alone backs every reservation
                assert v - model.accounts[acct].reserved >= 0


def _granted(model: RiskModel, acct: int, asset: int, amount: int, core: ReferenceCore) -> bool:
    """Whether the reference rules grant this withdrawal now (tried on a copy: a withdrawal
    changes nothing but the balance)."""
    trial = copy.copy(model)
    trial.balances = defaultdict(int, model.balances)
    row = C.rows([C.Withdraw(account=acct, asset=asset, amount=amount)], 1, model.now)[0]
    event = trial.run_command(row.tolist(), core.book.config.max_accounts)
    return event[mc.E_KIND] == RiskEventKind.WITHDRAWN


CoreMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_core_matches_model = CoreMachine.TestCase


def test_snapshot_round_trip_keeps_state() -> None:
    core = ExchangeCore(CONFIG)
    rows = C.rows(
        [
            C.ListInstrument(
                instrument=1,
                tick_size=TICK,
                lot_size=1,
                min_price=TICK,
                max_price=1_000_000 * TICK,
                min_qty=1,
                max_qty=1_000,
                reference_price=REF,
            ),
            C.OpenAccount(account=1, role=Role.BUYER),
            C.OpenAccount(account=2, role=Role.PROVIDER),
            C.Deposit(account=1, asset=0, amount=10**9),
            C.RegisterCapacity(account=2, instrument=1, gpu_hours=50),
            C.SubmitOrder(instrument=1, order_id=1, account=2, side=Side.SELL, price=REF, qty=10),
            C.SubmitOrder(instrument=1, order_id=2, account=1, side=Side.BUY, price=REF, qty=4),
            C.SubmitOrder(
                instrument=1, order_id=3, account=1, side=Side.BUY, price=REF - TICK, qty=4
            ),
        ],
        ts=T0,
    )
    core.process(rows)
    restored = ExchangeCore.from_bytes(core.to_bytes(), CONFIG)
    assert restored.state_hash() == core.state_hash()
    assert restored.risk.view() == core.risk.view()
    more = C.rows(
        [C.SubmitOrder(instrument=1, order_id=4, account=1, side=Side.BUY, price=REF, qty=6)],
        first_seq=9,
        ts=T0 + 1,
    )
    assert np.array_equal(core.process(more), restored.process(more))
    assert restored.state_hash() == core.state_hash()

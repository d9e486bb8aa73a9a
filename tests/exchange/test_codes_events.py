"""The shared codes and the typed commands/events against the rows the cores really write."""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange import codes
from exchange import commands as C
from exchange import events as E
from exchange.codes import CommandKind, EventKind, RejectCode
from exchange.ids import AccountId
from exchange.records import record_table
from matching import codes as mc
from matching.codes import CancelReason, Liquidity, OrderType, Side, STPMode, TimeInForce
from risk import codes as rc
from risk.codes import InstrumentState, Role

TS = 10**18  # ns; the core's clock is the commands' timestamps

STAGES: list[tuple[type[IntEnum], type[IntEnum], type[IntEnum], range, range]] = [
    # the merged enum, the book's part, risk's part, and the ranges the two parts keep to
    (RejectCode, mc.BookReject, rc.RiskReject, codes.BOOK_REJECTS, codes.RISK_REJECTS),
    (EventKind, mc.BookEventKind, rc.RiskEventKind, codes.BOOK_KINDS, codes.RISK_KINDS),
    (CommandKind, mc.BookCommandKind, rc.RiskCommandKind, codes.BOOK_KINDS, codes.RISK_KINDS),
]


# -- codes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("stages", STAGES, ids=lambda s: s[0].__name__)
def test_merged_enum_is_exactly_the_union_of_the_stages(stages: tuple) -> None:
    merged, book, risk, _, _ = stages
    expected = {m.name: m.value for part in (book, risk) for m in part}
    assert {m.name: m.value for m in merged} == expected  # nothing missing, added or renumbered
    assert list(merged.__members__) == list(expected)  # in stage order: book, then risk
    for part in (book, risk):
        for member in part:
            assert merged(member.value) == member  # IntEnum: interchangeable with the part's
            assert merged(member.value).name == member.name


@pytest.mark.parametrize("stages", STAGES, ids=lambda s: s[0].__name__)
def test_stages_keep_to_their_ranges_and_reuse_no_name(stages: tuple) -> None:
    merged, book, risk, book_range, risk_range = stages
    assert all(m.value in book_range for m in book)
    assert all(m.value in risk_range for m in risk)
    assert not set(book_range) & set(risk_range)
    assert not set(book.__members__) & set(risk.__members__)  # one name, one meaning
    for enum in (merged, book, risk):
        assert len(enum.__members__) == len(enum)  # no aliases: no value used twice


def test_reject_ranges_tile_and_leave_the_gateway_free() -> None:
    ranges = (codes.BOOK_REJECTS, codes.RISK_REJECTS, codes.GATEWAY_REJECTS)
    assert [(r.start, r.stop) for r in ranges] == [(0, 32), (32, 64), (64, 96)]
    assert not any(code in codes.GATEWAY_REJECTS for code in RejectCode)


def test_every_reject_code_has_a_reason() -> None:
    assert set(codes.REJECT_REASONS) == set(RejectCode)
    for code in RejectCode:
        assert codes.reason(int(code)) == codes.REJECT_REASONS[code] != ""
    assert (
        codes.reason(RejectCode.INSUFFICIENT_BALANCE)
        == (rc.RISK_REJECT_REASONS[rc.RiskReject.INSUFFICIENT_BALANCE])
    )
    assert (
        codes.reason(mc.BookReject.UNKNOWN_ORDER)
        == mc.BOOK_REJECT_REASONS[mc.BookReject.UNKNOWN_ORDER]
    )
    assert codes.reason(70) == "unknown reject code 70"


def test_every_kind_has_a_class() -> None:
    assert set(E.EVENT_TYPES) == {int(k) for k in EventKind}
    assert set(C.COMMAND_TYPES) == {int(k) for k in CommandKind}


# -- the record base -----------------------------------------------------------------------------
def test_records_take_keywords_only() -> None:
    with pytest.raises(TypeError):
        C.CancelOrder(1, 13, 2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        E.OrderExpired(5, 1, 10, 2, Side.SELL, 2_000_000, 4)  # type: ignore[misc]
    assert C.CancelOrder(account=AccountId(2), order_id=13, instrument=1).to_row()[
        [mc.C_INSTRUMENT, mc.C_ORDER_ID, mc.C_ACCOUNT]
    ].tolist() == [1, 13, 2]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Unnamed(C.Command):  # a field with no column
    KIND = 99
    COLUMNS: ClassVar[dict[str, int]] = {"account": mc.C_ACCOUNT}
    account: AccountId
    qty: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _Shared(C.Command):  # two fields in one column
    KIND = 99
    COLUMNS: ClassVar[dict[str, int]] = {"account": mc.C_ACCOUNT, "qty": mc.C_ACCOUNT}
    account: AccountId
    qty: int


@dataclass(frozen=True, slots=True, kw_only=True)
class _OnTheKind(C.Command):  # a field in a column the base writes
    KIND = 99
    COLUMNS: ClassVar[dict[str, int]] = {"qty": mc.C_KIND}
    qty: int


@pytest.mark.parametrize("cls", [_Unnamed, _Shared, _OnTheKind], ids=lambda c: c.__name__)
def test_record_table_refuses_a_wrong_column_table(cls: type[C.Command]) -> None:
    with pytest.raises(TypeError):
        record_table([cls])


def test_record_table_refuses_a_kind_twice() -> None:
    with pytest.raises(TypeError, match="kind"):
        record_table([C.CancelOrder, C.CancelOrder])


# -- strategies from the annotations ---------------------------------------------------------
INT64 = st.integers(-(2**63), 2**63 - 1)
BY_ANNOTATION: dict[str, st.SearchStrategy[Any]] = {
    "int": INT64,
    "bool": st.booleans(),
    **dict.fromkeys(("AccountId", "OrderId", "InstrumentId", "TradeId", "AssetId"), INT64),
    "AccountId | None": st.none() | INT64,
    "Side": st.sampled_from(Side),
    "Side | int": st.sampled_from(Side) | INT64,
    "OrderType": st.sampled_from(OrderType),
    "TimeInForce": st.sampled_from(TimeInForce),
    "STPMode": st.sampled_from(STPMode),
    "Liquidity": st.sampled_from(Liquidity),
    "CancelReason": st.sampled_from(CancelReason),
    "RejectCode": st.sampled_from(RejectCode),
    "CommandKind | int | None": st.none() | st.sampled_from(CommandKind) | INT64.filter(bool),
    "Role": st.sampled_from(Role),
    "InstrumentState": st.sampled_from(InstrumentState),
}


def instances(cls: type) -> st.SearchStrategy[Any]:
    kwargs = {f.name: BY_ANNOTATION[str(f.type)] for f in fields(cls)}
    return st.builds(cls, **kwargs)


@given(st.sampled_from(list(C.COMMAND_TYPES.values())).flatmap(instances))
def test_commands_round_trip_through_rows(command: C.Command) -> None:
    row = command.to_row(seq=7, ts=TS)
    assert row[mc.C_SEQ] == 7 and row[mc.C_TS] == TS and row[mc.C_KIND] == command.KIND
    assert C.from_row(row) == command
    orjson.dumps(command.to_wire())


@given(st.sampled_from(list(E.EVENT_TYPES.values())).flatmap(instances))
def test_events_round_trip_through_rows(event: E.Event) -> None:
    row = event.to_row()
    assert row[mc.E_KIND] == event.KIND
    assert E.from_row(row) == event
    assert np.array_equal(E.from_row(row).to_row(), row)
    orjson.dumps(E.to_wire(event))


# -- hand-built rows, one per kind (columns as the kernels write them) ------------------------
def _row(kind: int, **cols: int) -> np.ndarray:
    row = np.zeros(mc.N_EVENT_FIELDS, dtype=np.int64)
    row[mc.E_SEQ] = 5
    row[mc.E_KIND] = kind
    for name, value in cols.items():
        row[getattr(mc, f"E_{name.upper()}")] = value
    return row


ORDER = {"instrument": 1, "order_id": 10, "account": 2, "side": 2, "price": 2_000_000, "qty": 4}
HAND_BUILT: list[tuple[np.ndarray, E.Event]] = [
    (
        _row(EventKind.ORDER_ACCEPTED, **ORDER, leaves=4, shown=4),
        E.OrderAccepted(
            seq=5,
            instrument=1,
            order_id=10,
            account=2,
            side=Side.SELL,
            price=2_000_000,
            qty=4,
            leaves=4,
            shown=4,
        ),
    ),
    (
        _row(EventKind.ORDER_REJECTED, **ORDER, reason=38),
        E.OrderRejected(
            seq=5,
            instrument=1,
            order_id=10,
            account=2,
            side=Side.SELL,
            price=2_000_000,
            qty=4,
            reason=RejectCode.INSUFFICIENT_COLLATERAL,
        ),
    ),
    (
        _row(
            EventKind.ORDER_FILLED,
            **ORDER,
            leaves=6,
            shown=6,
            trade_id=3,
            liquidity=1,
            reason=-1600,
            contra_order_id=11,
            contra_account=1,
        ),
        E.OrderFilled(
            seq=5,
            instrument=1,
            order_id=10,
            account=2,
            side=Side.SELL,
            price=2_000_000,
            qty=4,
            leaves=6,
            shown=6,
            trade_id=3,
            liquidity=Liquidity.MAKER,
            fee=-1600,
            contra_order_id=11,
            contra_account=1,
        ),
    ),
    (
        _row(EventKind.ORDER_CANCELLED, **ORDER, leaves=2, shown=1, reason=4),
        E.OrderCancelled(
            seq=5,
            instrument=1,
            order_id=10,
            account=2,
            side=Side.SELL,
            price=2_000_000,
            qty=4,
            leaves=2,
            shown=1,
            reason=CancelReason.SELF_TRADE,
        ),
    ),
    (
        _row(EventKind.ORDER_REPLACED, **ORDER, leaves=3, shown=3),
        E.OrderReplaced(
            seq=5,
            instrument=1,
            order_id=10,
            account=2,
            side=Side.SELL,
            price=2_000_000,
            qty=4,
            leaves=3,
            shown=3,
        ),
    ),
    (
        _row(EventKind.ORDER_EXPIRED, **ORDER),
        E.OrderExpired(
            seq=5, instrument=1, order_id=10, account=2, side=Side.SELL, price=2_000_000, qty=4
        ),
    ),
    (
        _row(EventKind.MASS_CANCEL_DONE, instrument=-1, account=2, qty=3),
        E.MassCancelDone(seq=5, instrument=-1, account=2, count=3),
    ),
    (
        _row(
            EventKind.COMMAND_REJECTED,
            instrument=1,
            order_id=9,
            account=2,
            price=7,
            qty=8,
            trade_id=int(CommandKind.REPLACE_ORDER),
            reason=40,
        ),
        E.CommandRejected(
            seq=5,
            instrument=1,
            order_id=9,
            account=2,
            price=7,
            qty=8,
            command=CommandKind.REPLACE_ORDER,
            reason=RejectCode.OUTSIDE_PRICE_BAND,
        ),
    ),
    (
        _row(EventKind.ACCOUNT_OPENED, account=3, side=2),
        E.AccountOpened(seq=5, account=3, role=Role.PROVIDER),
    ),
    (
        _row(EventKind.DEPOSITED, instrument=0, account=3, qty=100, leaves=150),
        E.Deposited(seq=5, account=3, asset=0, amount=100, balance=150),
    ),
    (
        _row(EventKind.WITHDRAWN, instrument=1, account=3, qty=100, leaves=50),
        E.Withdrawn(seq=5, account=3, asset=1, amount=100, balance=50),
    ),
    (
        _row(
            EventKind.ORACLE_PRICE_SET,
            instrument=1,
            side=1,
            price=15_000_000_000,
            qty=1_000_000,
            leaves=119_992_000,
            shown=-8,
            trade_id=1_000_000_000,
        ),
        E.OraclePriceSet(
            seq=5,
            asset=1,
            price=15_000_000_000,
            conf=1_000_000,
            expo=-8,
            publish_time=1_000_000_000,
            status=1,
            unit_value=119_992_000,
        ),
    ),
    (
        _row(EventKind.CAPACITY_REGISTERED, instrument=1, account=2, qty=100, leaves=130),
        E.CapacityRegistered(seq=5, account=2, instrument=1, gpu_hours=100, inventory=130),
    ),
    (
        _row(EventKind.LIMITS_SET, account=2, price=10**11, qty=1000, leaves=10**6, shown=50),
        E.LimitsSet(
            seq=5,
            account=2,
            max_order_qty=1000,
            max_order_notional=10**11,
            max_open_orders=50,
            max_position=10**6,
        ),
    ),
    (
        _row(EventKind.KILL_SWITCH_SET, account=2, side=1, qty=1),
        E.KillSwitchSet(seq=5, on=True, account=2),
    ),
    (
        _row(EventKind.INSTRUMENT_STATUS_CHANGED, instrument=1, side=3, qty=2),
        E.InstrumentStatusChanged(
            seq=5, instrument=1, status=InstrumentState.HALTED, previous=InstrumentState.TRADING
        ),
    ),
    (
        _row(
            EventKind.INSTRUMENT_LISTED,
            instrument=1,
            side=1,
            price=2_000_000,
            qty=100_000,
            leaves=1000,
            shown=1,
            trade_id=7 * 10**18,
        ),
        E.InstrumentListed(
            seq=5,
            instrument=1,
            status=InstrumentState.PRE_OPEN,
            reference_price=2_000_000,
            max_qty=100_000,
            tick_size=1000,
            lot_size=1,
            cutoff_ts=7 * 10**18,
        ),
    ),
]


def test_hand_built_rows_cover_every_kind() -> None:
    assert {event.KIND for _, event in HAND_BUILT} == set(E.EVENT_TYPES)


@pytest.mark.parametrize(("row", "expected"), HAND_BUILT, ids=lambda x: type(x).__name__)
def test_hand_built_rows_decode(row: np.ndarray, expected: E.Event) -> None:
    event = E.from_row(row)
    assert event == expected
    assert type(event) is type(expected)
    assert np.array_equal(event.to_row(), row)
    wire = orjson.loads(orjson.dumps(E.to_wire(event)))
    assert wire["type"] == type(expected).__name__ and wire["seq"] == 5


def test_wire_names_enums() -> None:
    filled = E.from_row(HAND_BUILT[2][0])
    assert E.to_wire(filled)["side"] == "SELL" and E.to_wire(filled)["liquidity"] == "MAKER"
    rejected = E.from_row(HAND_BUILT[7][0])
    wire = E.to_wire(rejected)
    assert wire["command"] == "REPLACE_ORDER" and wire["reason"] == "OUTSIDE_PRICE_BAND"
    assert E.to_wire(E.KillSwitchSet(seq=1, on=False))["account"] is None


def test_echoed_values_that_are_not_members_stay_ints() -> None:
    bad_side = _row(EventKind.ORDER_REJECTED, **{**ORDER, "side": 9}, reason=5)
    assert E.from_row(bad_side).side == 9  # type: ignore[attr-defined]
    unknown_kind = _row(EventKind.COMMAND_REJECTED, trade_id=99, reason=1)
    assert E.from_row(unknown_kind).command == 99  # type: ignore[attr-defined]
    by_book = _row(EventKind.COMMAND_REJECTED, trade_id=0, reason=19)
    assert E.from_row(by_book).command is None  # type: ignore[attr-defined]


def test_unknown_kind_and_value_fail() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        E.from_row(_row(99))
    with pytest.raises(ValueError):
        E.from_row(_row(EventKind.ORDER_CANCELLED, **ORDER, reason=77))
    with pytest.raises(ValueError):
        E.from_row(_row(EventKind.KILL_SWITCH_SET, side=3))


# -- real rows from the core ----------------------------------------------------------------
@pytest.fixture(scope="module")
def core_events() -> np.ndarray:
    from exchange.core import ExchangeCore  # compiles numba on first use

    core = ExchangeCore()
    first = [
        C.ListInstrument(
            instrument=1,
            tick_size=1000,
            lot_size=1,
            min_price=1000,
            max_price=1_000_000_000,
            min_qty=1,
            max_qty=100_000,
            reference_price=2_000_000,
        ),
        C.OpenAccount(account=1, role=Role.BUYER),
        C.OpenAccount(account=2, role=Role.PROVIDER),
        C.Deposit(account=1, asset=0, amount=100_000_000),
        C.SetOraclePrice(
            asset=1, price=15_000_000_000, conf=1_000_000, expo=-8, publish_time=TS // 10**9
        ),
        C.RegisterCapacity(account=2, instrument=1, gpu_hours=100),
        C.SetLimits(
            account=1,
            max_order_qty=1000,
            max_order_notional=10**11,
            max_open_orders=50,
            max_position=10**6,
        ),
        C.SubmitOrder(
            instrument=1, order_id=10, account=2, side=Side.SELL, price=2_000_000, qty=10
        ),
        C.SubmitOrder(
            instrument=1, order_id=11, account=1, side=Side.BUY, price=2_100_000, qty=4
        ),  # accepted, two fills
        C.SubmitOrder(
            instrument=1, order_id=12, account=1, side=Side.BUY, price=2_100_000, qty=400
        ),  # risk: insufficient collateral
        C.SubmitOrder(instrument=1, order_id=13, account=1, side=Side.BUY, price=1_900_000, qty=4),
        C.ReplaceOrder(instrument=1, order_id=13, account=1, price=1_950_000, qty=5),
        C.CancelOrder(instrument=1, order_id=13, account=1),
        C.CancelOrder(instrument=1, order_id=99, account=1),  # the book: unknown order
        C.Deposit(account=7, asset=0, amount=5),  # risk: unknown account
        C.SubmitOrder(instrument=1, order_id=15, account=1, side=Side.BUY, price=1_800_000, qty=1),
        C.MassCancel(instrument=1, account=1),
        C.SubmitOrder(
            instrument=1,
            order_id=14,
            account=1,
            side=Side.BUY,
            price=1_800_000,
            qty=2,
            tif=TimeInForce.GTD,
            expire_ts=TS + 5,
        ),
        C.SetKillSwitch(on=True, account=1),
        C.SetKillSwitch(on=False),
        C.Withdraw(account=1, asset=0, amount=1),
    ]
    later = [C.AdvanceClock(), C.SetInstrumentStatus(instrument=1, status=InstrumentState.HALTED)]
    return np.concatenate(
        [
            core.process(C.rows(first, ts=TS)),
            core.process(C.rows(later, first_seq=len(first) + 1, ts=TS + 10)),
        ]
    )


def test_core_rows_decode_exactly(core_events: np.ndarray) -> None:
    decoded = E.decode(core_events)
    assert {e.KIND for e in decoded} == set(E.EVENT_TYPES)  # the stream covers every kind
    for row, event in zip(core_events, decoded, strict=True):
        # every column the core writes is a field: nothing is lost in decoding
        assert np.array_equal(event.to_row(), row), event
        orjson.dumps(E.to_wire(event))


def test_core_rows_mean_what_the_fields_say(core_events: np.ndarray) -> None:
    decoded = E.decode(core_events)
    fills = [e for e in decoded if isinstance(e, E.OrderFilled)]
    maker, taker = fills
    assert maker.trade_id == taker.trade_id and maker.liquidity is Liquidity.MAKER
    assert (maker.contra_order_id, taker.contra_order_id) == (taker.order_id, maker.order_id)
    assert maker.fee < 0 < taker.fee  # rebate and taker fee, in quote base units
    rejected = next(e for e in decoded if isinstance(e, E.OrderRejected))
    assert rejected.reason is RejectCode.INSUFFICIENT_COLLATERAL
    by_book, by_risk = (e for e in decoded if isinstance(e, E.CommandRejected))
    assert (by_book.command, by_book.reason) == (None, RejectCode.UNKNOWN_ORDER)
    assert (by_risk.command, by_risk.reason) == (CommandKind.DEPOSIT, RejectCode.UNKNOWN_ACCOUNT)
    switches = [e for e in decoded if isinstance(e, E.KillSwitchSet)]
    assert switches == [
        E.KillSwitchSet(seq=switches[0].seq, on=True, account=1),
        E.KillSwitchSet(seq=switches[1].seq, on=False, account=None),
    ]
    expired = next(e for e in decoded if isinstance(e, E.OrderExpired))
    assert (expired.order_id, expired.qty) == (14, 2)

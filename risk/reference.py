"""The risk rules in plain Python: the model the numba kernel is tested against.

Readable first, fast never. Dictionaries instead of arrays, one method per rule.

Rules
- Accounts are opened with a role; limits start at the role's defaults. Account 0 is the
  fee account (operator). Deposits add to a balance; a withdrawal needs the balance and
  must leave the available value non-negative.
- Available value = USDC balance + for each other asset ``value(balance)`` - reserved.
  ``value`` uses ``(price - conf) * 10**expo`` per token less the asset's haircut, and is
  zero unless the oracle status is TRADING, the price is at most ``max_age_s`` old and
  ``conf / price`` is within ``max_conf_bps``. The USDC balance may go below zero only by
  paying fills reserved against other collateral (a loan against that collateral).
- A buy order reserves ``price * leaves + ceil(price * leaves * taker_bps / 1e4)``; a sell
  order reserves ``leaves`` units of inventory (registered capacity + units bought).
- Order entry checks, in order: account open; instrument listed, not halted, trading;
  global then account kill switch; open orders below the maximum; quantity, notional
  and position (own position plus open orders on that side, plus this order) within
  limits; price within ``price_band_bps`` of the reference (last trade, else mid, else
  the listing's reference price); then collateral (buys) or inventory (sells).
- A replace that only lowers the quantity at the same price is always allowed; other
  replaces pass the same checks on the difference they make.
- Each book event is booked: an acceptance reserves, a cancel/expiry releases what the
  leaves held, a replace swaps the old reservation for the new, and a fill releases the
  filled part at the order's limit (the trade price for the maker) and pays: the buyer
  ``notional + fee``, the seller's receivable and the instrument's escrow get
  ``notional - fee``, the fee account both fees. Fees round down (``floor``, a rebate
  too), reservations round up, so no fill costs more than it releases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from matching import codes as mc
from matching.codes import BookEventKind, Liquidity, Side
from risk.codes import (
    FEE_ACCOUNT,
    HIGHEST_STATUS,
    ORACLE_TRADING,
    InstrumentState,
    RiskCommandKind,
    RiskEventKind,
    RiskReject,
    Role,
    can_transition,
)
from risk.config import RiskConfig

MAX_AMOUNT = 1 << 62
BPS = 10_000


@dataclass(slots=True)
class Account:
    role: int
    limits: list[int]  # max qty, max notional, max open orders, max position
    killed: int = 0
    reserved: int = 0
    open_orders: int = 0


@dataclass(slots=True)
class Position:
    inventory: int = 0
    inv_reserved: int = 0
    position: int = 0
    open_buy: int = 0
    open_sell: int = 0
    receivable: int = 0


@dataclass(slots=True)
class Instrument:
    status: int
    ref_price: int
    last_price: int = 0
    escrow: int = 0
    cutoff: int = 0


@dataclass(slots=True)
class Asset:
    decimals: int
    haircut_bps: int
    max_age: int
    max_conf_bps: int
    price: int = 0
    conf: int = 0
    expo: int = 0
    publish: int = 0
    status: int = 0
    unit_value: int = 0


def fee_on(notional: int, bps: int) -> int:
    return notional * bps // BPS if bps >= 0 else -(notional * -bps // BPS)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class RiskModel:
    config: RiskConfig
    accounts: dict[int, Account] = field(default_factory=dict)
    balances: defaultdict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    instruments: dict[int, Instrument] = field(default_factory=dict)
    positions: defaultdict[tuple[int, int], Position] = field(
        default_factory=lambda: defaultdict(Position)
    )
    assets: list[Asset] = field(default_factory=list)
    kill_all: int = 0
    now: int = 0

    def __post_init__(self) -> None:
        self.assets = [
            Asset(a.decimals, a.haircut_bps, a.max_age_s, a.max_conf_bps)
            for a in self.config.assets
        ]
        self.accounts[FEE_ACCOUNT] = Account(int(Role.OPERATOR), self._role_limits(Role.OPERATOR))

    def _role_limits(self, role: int) -> list[int]:
        lim = self.config.limits[Role(role)]
        return [lim.max_order_qty, lim.max_order_notional, lim.max_open_orders, lim.max_position]

    # -- valuation -------------------------------------------------------------------------
    def reserve_for(self, price: int, leaves: int) -> int:
        notional = price * leaves
        return notional + ceil_div(notional * self.config.taker_fee_bps, BPS)

    def _usable_unit_value(self, k: int) -> int:
        a = self.assets[k]
        fresh = self.now // 1_000_000_000 - a.publish <= a.max_age
        tight = a.conf * BPS <= a.max_conf_bps * a.price
        return a.unit_value if a.status == ORACLE_TRADING and fresh and tight else 0

    def _value(self, k: int, amount: int, unit: int) -> int:
        if amount <= 0 or unit <= 0:
            return 0
        scale = 10 ** self.assets[k].decimals
        if amount // scale > MAX_AMOUNT // unit:
            return MAX_AMOUNT
        return amount * unit // scale

    def available(self, acct: int) -> int:
        total = self.balances[(acct, 0)]
        for k in range(1, len(self.assets)):
            total += self._value(k, self.balances[(acct, k)], self._usable_unit_value(k))
        return total - self.accounts[acct].reserved

    # -- pre-trade ---------------------------------------------------------------------------
    def band_reference(self, instr: int, best_bid: int, best_ask: int) -> int:
        ins = self.instruments[instr]
        if ins.last_price:
            return ins.last_price
        if best_bid and best_ask:
            return (best_bid + best_ask) // 2
        return ins.ref_price

    def _gate(self, acct: int, instr: int) -> int:
        if acct not in self.accounts:
            return RiskReject.UNKNOWN_ACCOUNT
        ins = self.instruments.get(instr)
        if ins is None:
            return mc.BookReject.UNKNOWN_INSTRUMENT
        if ins.cutoff and self.now >= ins.cutoff:
            return RiskReject.INSTRUMENT_NOT_TRADING
        if ins.status == InstrumentState.HALTED:
            return RiskReject.INSTRUMENT_HALTED
        if ins.status != InstrumentState.TRADING:
            return RiskReject.INSTRUMENT_NOT_TRADING
        if self.kill_all:
            return RiskReject.GLOBAL_KILL_SWITCH
        if self.accounts[acct].killed:
            return RiskReject.ACCOUNT_KILL_SWITCH
        return 0

    def _limits_and_band(self, acct, instr, side, price, qty, more, ref) -> int:
        max_qty, max_notional, _, max_position = self.accounts[acct].limits
        if qty > max_qty:
            return RiskReject.LIMIT_ORDER_QUANTITY
        if price * qty > max_notional:
            return RiskReject.LIMIT_ORDER_NOTIONAL
        p = self.positions.get((acct, instr), Position())
        if side == Side.BUY:
            exposure = p.position + p.open_buy + more
        else:
            exposure = p.open_sell + more - p.position
        if exposure > max_position:
            return RiskReject.LIMIT_POSITION
        band = self.config.price_band_bps
        if band and ref and abs(price - ref) * BPS > band * ref:
            return RiskReject.OUTSIDE_PRICE_BAND
        return 0

    def _cover(self, acct, instr, side, value, units) -> int:
        if side == Side.BUY:
            if value > 0 and self.available(acct) < value:
                return RiskReject.INSUFFICIENT_COLLATERAL
            return 0
        p = self.positions.get((acct, instr), Position())
        if units > 0 and p.inventory - p.inv_reserved < units:
            return RiskReject.INSUFFICIENT_INVENTORY
        return 0

    def check_new(self, acct, instr, side, price, qty, ref) -> int:
        code = self._gate(acct, instr)
        if code:
            return code
        a = self.accounts[acct]
        if a.open_orders >= a.limits[2]:
            return RiskReject.LIMIT_OPEN_ORDERS
        code = self._limits_and_band(acct, instr, side, price, qty, qty, ref)
        return code or self._cover(acct, instr, side, self.reserve_for(price, qty), qty)

    def check_replace(self, acct, instr, side, old_price, old_leaves, price, qty, leaves, ref):
        if price == old_price and leaves <= old_leaves:
            return 0
        code = self._gate(acct, instr) or self._limits_and_band(
            acct, instr, side, price, qty, leaves - old_leaves, ref
        )
        if code:
            return code
        more = self.reserve_for(price, leaves) - self.reserve_for(old_price, old_leaves)
        return self._cover(acct, instr, side, more, leaves - old_leaves)

    # -- post-trade --------------------------------------------------------------------------
    def _release(self, acct, instr, side, price, before, after) -> None:
        p = self.positions[(acct, instr)]
        if side == Side.BUY:
            self.accounts[acct].reserved -= self.reserve_for(price, before) - self.reserve_for(
                price, after
            )
            p.open_buy -= before - after
        else:
            p.inv_reserved -= before - after
            p.open_sell -= before - after
        if after == 0 and before > 0:
            self.accounts[acct].open_orders -= 1

    def apply_events(
        self, events: list[list[int]], taker_limit: int, old_price: int, old_leaves: int
    ) -> None:
        """Book the book's events of one command (fills get their fee in E_REASON)."""
        for e in events:
            kind, acct, instr, side = (
                e[mc.E_KIND],
                e[mc.E_ACCOUNT],
                e[mc.E_INSTRUMENT],
                e[mc.E_SIDE],
            )
            price, qty, leaves = e[mc.E_PRICE], e[mc.E_QTY], e[mc.E_LEAVES]
            if kind == BookEventKind.ORDER_ACCEPTED:
                p = self.positions[(acct, instr)]
                if side == Side.BUY:
                    self.accounts[acct].reserved += self.reserve_for(price, qty)
                    p.open_buy += qty
                else:
                    p.inv_reserved += qty
                    p.open_sell += qty
                self.accounts[acct].open_orders += 1
            elif kind in (BookEventKind.ORDER_CANCELLED, BookEventKind.ORDER_EXPIRED):
                self._release(acct, instr, side, price, leaves + qty, leaves)
            elif kind == BookEventKind.ORDER_REPLACED:
                p = self.positions[(acct, instr)]
                if side == Side.BUY:
                    self.accounts[acct].reserved += self.reserve_for(
                        price, leaves
                    ) - self.reserve_for(old_price, old_leaves)
                    p.open_buy += leaves - old_leaves
                else:
                    p.inv_reserved += leaves - old_leaves
                    p.open_sell += leaves - old_leaves
            elif kind == BookEventKind.ORDER_FILLED:
                maker = e[mc.E_LIQUIDITY] == Liquidity.MAKER
                notional = price * qty
                bps = self.config.maker_fee_bps if maker else self.config.taker_fee_bps
                charged = fee_on(notional, bps)
                e[mc.E_REASON] = charged
                self._release(
                    acct, instr, side, price if maker else taker_limit, leaves + qty, leaves
                )
                self.balances[(FEE_ACCOUNT, 0)] += charged
                p = self.positions[(acct, instr)]
                if side == Side.BUY:
                    self.balances[(acct, 0)] -= notional + charged
                    p.position += qty
                    p.inventory += qty
                else:
                    p.position -= qty
                    p.inventory -= qty
                    p.receivable += notional - charged
                    self.instruments[instr].escrow += notional - charged
                self.instruments[instr].last_price = price

    # -- risk's own commands -------------------------------------------------------------------
    def run_command(self, row: list[int], max_accounts: int) -> list[int]:
        """Apply one of risk's commands; returns its one event row."""
        kind = row[mc.C_KIND]
        handlers: dict[int, Callable[[list[int], int], list[int]]] = {
            RiskCommandKind.OPEN_ACCOUNT: self._open_account,
            RiskCommandKind.DEPOSIT: self._deposit,
            RiskCommandKind.WITHDRAW: self._withdraw,
            RiskCommandKind.SET_ORACLE_PRICE: self._oracle,
            RiskCommandKind.REGISTER_CAPACITY: self._register,
            RiskCommandKind.SET_LIMITS: self._limits,
            RiskCommandKind.SET_KILL_SWITCH: self._kill,
            RiskCommandKind.SET_INSTRUMENT_STATUS: self._status,
        }
        handler = handlers.get(kind)
        if handler is None:
            return reject(row, mc.BookReject.INVALID_COMMAND)
        return handler(row, max_accounts)

    def _open_account(self, row, max_accounts):
        acct, role = row[mc.C_ACCOUNT], row[mc.C_SIDE]
        if not 0 <= acct < max_accounts:
            return reject(row, mc.BookReject.INVALID_ACCOUNT)
        if role not in set(Role):
            return reject(row, RiskReject.INVALID_ROLE)
        if acct in self.accounts:
            return reject(row, RiskReject.ACCOUNT_EXISTS)
        self.accounts[acct] = Account(role, self._role_limits(role))
        return event(row, RiskEventKind.ACCOUNT_OPENED, account=acct, side=role)

    def _amount_code(self, row) -> int:
        if row[mc.C_ACCOUNT] not in self.accounts:
            return RiskReject.UNKNOWN_ACCOUNT
        if not 0 <= row[mc.C_INSTRUMENT] < len(self.assets):
            return RiskReject.UNKNOWN_ASSET
        if not 0 < row[mc.C_QTY] <= MAX_AMOUNT:
            return RiskReject.INVALID_AMOUNT
        return 0

    def _deposit(self, row, _max_accounts):
        code = self._amount_code(row)
        key = (row[mc.C_ACCOUNT], row[mc.C_INSTRUMENT])
        if not code and self.balances[key] > MAX_AMOUNT - row[mc.C_QTY]:
            code = RiskReject.INVALID_AMOUNT
        if code:
            return reject(row, code)
        self.balances[key] += row[mc.C_QTY]
        return event(
            row,
            RiskEventKind.DEPOSITED,
            instrument=key[1],
            account=key[0],
            qty=row[mc.C_QTY],
            leaves=self.balances[key],
            extra=row[mc.C_ORDER_ID],
        )

    def _withdraw(self, row, _max_accounts):
        code = self._amount_code(row)
        if code:
            return reject(row, code)
        acct, k, amount = row[mc.C_ACCOUNT], row[mc.C_INSTRUMENT], row[mc.C_QTY]
        held = self.balances[(acct, k)]
        if amount > held:
            return reject(row, RiskReject.INSUFFICIENT_BALANCE)
        if k == 0:
            lost = amount
        else:
            unit = self._usable_unit_value(k)
            lost = self._value(k, held, unit) - self._value(k, held - amount, unit)
        if lost > 0 and self.available(acct) < lost:
            return reject(row, RiskReject.INSUFFICIENT_BALANCE)
        self.balances[(acct, k)] -= amount
        return event(
            row,
            RiskEventKind.WITHDRAWN,
            instrument=k,
            account=acct,
            qty=amount,
            leaves=self.balances[(acct, k)],
            extra=row[mc.C_ORDER_ID],
        )

    def _oracle(self, row, _max_accounts):
        k = row[mc.C_INSTRUMENT]
        if not 1 <= k < len(self.assets):
            return reject(row, RiskReject.UNKNOWN_ASSET)
        price, conf, expo = row[mc.C_PRICE], row[mc.C_QTY], row[mc.C_DISPLAY_QTY]
        publish, status = row[mc.C_EXPIRE_TS], row[mc.C_SIDE]
        if price <= 0 or conf < 0 or not -18 <= expo <= 18 or publish <= 0 or status < 0:
            return reject(row, RiskReject.INVALID_ORACLE_PRICE)
        a = self.assets[k]
        unit = unit_value(price, conf, expo, a.haircut_bps)
        if unit is None or unit * 10**a.decimals > MAX_AMOUNT:
            return reject(row, RiskReject.INVALID_ORACLE_PRICE)
        if publish <= a.publish:
            return reject(row, RiskReject.OUTDATED_ORACLE_PRICE)
        a.price, a.conf, a.expo, a.publish, a.status, a.unit_value = (
            price,
            conf,
            expo,
            publish,
            status,
            unit,
        )
        return event(
            row,
            RiskEventKind.ORACLE_PRICE_SET,
            instrument=k,
            side=status,
            price=price,
            qty=conf,
            leaves=unit,
            shown=expo,
            extra=publish,
        )

    def _register(self, row, _max_accounts):
        acct, instr, units = row[mc.C_ACCOUNT], row[mc.C_INSTRUMENT], row[mc.C_QTY]
        if acct not in self.accounts:
            return reject(row, RiskReject.UNKNOWN_ACCOUNT)
        if self.accounts[acct].role != Role.PROVIDER:
            return reject(row, RiskReject.NOT_A_PROVIDER)
        ins = self.instruments.get(instr)
        if ins is None:
            return reject(row, mc.BookReject.UNKNOWN_INSTRUMENT)
        if ins.status not in (
            InstrumentState.PRE_OPEN,
            InstrumentState.TRADING,
            InstrumentState.HALTED,
        ):
            return reject(row, RiskReject.INSTRUMENT_NOT_TRADING)
        held = self.positions[(acct, instr)].inventory if (acct, instr) in self.positions else 0
        if units <= 0 or units > MAX_AMOUNT - held:
            return reject(row, RiskReject.INVALID_AMOUNT)
        p = self.positions[(acct, instr)]
        p.inventory += units
        return event(
            row,
            RiskEventKind.CAPACITY_REGISTERED,
            instrument=instr,
            account=acct,
            qty=units,
            leaves=p.inventory,
        )

    def _limits(self, row, _max_accounts):
        acct = row[mc.C_ACCOUNT]
        if acct not in self.accounts:
            return reject(row, RiskReject.UNKNOWN_ACCOUNT)
        lim = [row[mc.C_QTY], row[mc.C_PRICE], row[mc.C_DISPLAY_QTY], row[mc.C_EXPIRE_TS]]
        if min(lim) <= 0:
            return reject(row, RiskReject.INVALID_LIMITS)
        self.accounts[acct].limits = lim
        return event(
            row,
            RiskEventKind.LIMITS_SET,
            account=acct,
            price=lim[1],
            qty=lim[0],
            leaves=lim[3],
            shown=lim[2],
        )

    def _kill(self, row, _max_accounts):
        scope, on, acct = row[mc.C_SIDE], row[mc.C_QTY], row[mc.C_ACCOUNT]
        if scope not in (1, 2) or on not in (0, 1):
            return reject(row, mc.BookReject.INVALID_COMMAND)
        if scope == 1:
            if acct not in self.accounts:
                return reject(row, RiskReject.UNKNOWN_ACCOUNT)
            self.accounts[acct].killed = on
        else:
            self.kill_all = on
        return event(
            row,
            RiskEventKind.KILL_SWITCH_SET,
            account=acct if scope == 1 else 0,
            side=scope,
            qty=on,
        )

    def _status(self, row, _max_accounts):
        instr, new = row[mc.C_INSTRUMENT], row[mc.C_SIDE]
        ins = self.instruments.get(instr)
        if ins is None:
            return reject(row, mc.BookReject.UNKNOWN_INSTRUMENT)
        if not 1 <= new <= HIGHEST_STATUS or not can_transition(
            InstrumentState(ins.status), InstrumentState(new)
        ):
            return reject(row, RiskReject.INVALID_STATUS_TRANSITION)
        old, ins.status = ins.status, new
        return event(
            row, RiskEventKind.INSTRUMENT_STATUS_CHANGED, instrument=instr, side=new, qty=old
        )

    # -- comparison ----------------------------------------------------------------------------
    def view(self) -> dict:
        """The same picture as ``RiskState.view``."""
        return {
            "accounts": {
                i: (a.role, a.killed, a.reserved, a.open_orders, *a.limits)
                for i, a in sorted(self.accounts.items())
            },
            "balances": {k: v for k, v in self.balances.items() if v},
            "instruments": {
                i: (s.status, s.ref_price, s.last_price, s.escrow, s.cutoff)
                for i, s in sorted(self.instruments.items())
            },
            "assets": [
                (
                    a.decimals,
                    a.haircut_bps,
                    a.max_age,
                    a.max_conf_bps,
                    a.price,
                    a.conf,
                    a.expo,
                    a.publish,
                    a.status,
                    a.unit_value,
                )
                for a in self.assets
            ],
            "positions": {
                k: (p.inventory, p.inv_reserved, p.position, p.open_buy, p.open_sell, p.receivable)
                for k, p in self.positions.items()
                if any(
                    (p.inventory, p.inv_reserved, p.position, p.open_buy, p.open_sell, p.receivable)
                )
            },
            "kill_all": self.kill_all,
        }


def unit_value(price: int, conf: int, expo: int, haircut_bps: int) -> int | None:
    """Micro-USDC per whole token after confidence and haircut; None if too large."""
    p = price - conf
    if p <= 0:
        return 0
    shift = 6 + expo
    if shift >= 0:
        v = p * 10**shift
        if v > MAX_AMOUNT:
            return None
    else:
        v = p // 10**-shift
    if v > MAX_AMOUNT // BPS:
        return None
    return v * (BPS - haircut_bps) // BPS


def event(
    row: list[int],
    kind: int,
    *,
    instrument=0,
    account=0,
    side=0,
    price=0,
    qty=0,
    leaves=0,
    shown=0,
    extra=0,
    reason=0,
) -> list[int]:
    e = [0] * mc.N_EVENT_FIELDS
    e[mc.E_SEQ] = row[mc.C_SEQ]
    e[mc.E_KIND] = int(kind)
    e[mc.E_INSTRUMENT] = instrument
    e[mc.E_ACCOUNT] = account
    e[mc.E_SIDE] = side
    e[mc.E_PRICE] = price
    e[mc.E_QTY] = qty
    e[mc.E_LEAVES] = leaves
    e[mc.E_SHOWN] = shown
    e[mc.E_TRADE_ID] = extra
    e[mc.E_REASON] = reason
    return e


def reject(row: list[int], code: int) -> list[int]:
    e = event(
        row,
        BookEventKind.COMMAND_REJECTED,
        instrument=row[mc.C_INSTRUMENT],
        account=row[mc.C_ACCOUNT],
        price=row[mc.C_PRICE],
        qty=row[mc.C_QTY],
        extra=row[mc.C_KIND],
        reason=int(code),
    )
    e[mc.E_ORDER_ID] = row[mc.C_ORDER_ID]
    return e

"""Pre-trade checks and post-trade bookkeeping on arrays, compiled with numba.

These functions are inlined into the engine's batch kernel (``exchange.engine_kernel``),
which runs them around each call into the order book: ``check_new`` / ``check_replace``
before (pure: a refusal changes nothing), ``apply_events`` after, on the events the book
wrote, and ``run_command`` for risk's own commands (deposits, oracle prices, ...).
The rules are written out in ``risk.reference``, a plain-Python model that must decide
exactly the same; tests run both on the same command streams.

``rs`` is always a ``risk.state.RiskArrays`` (``rs.accounts``, ``rs.balances``, ...): a
named tuple of the arrays, which numba compiles to a plain struct.

Money: quote units (micro-USDC). A buy order reserves ``price * leaves`` plus the taker
fee rounded up; fills charge fees rounded down, so a fill never costs more than it
releases and the available balance cannot go negative through trading.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from matching import codes as mc
from matching import kernel as mk
from risk import codes as r

BUY = int(mc.Side.BUY)
SELL = int(mc.Side.SELL)
MAKER = int(mc.Liquidity.MAKER)
EV_ACCEPTED = int(mc.BookEventKind.ORDER_ACCEPTED)
EV_FILLED = int(mc.BookEventKind.ORDER_FILLED)
EV_CANCELLED = int(mc.BookEventKind.ORDER_CANCELLED)
EV_REPLACED = int(mc.BookEventKind.ORDER_REPLACED)
EV_EXPIRED = int(mc.BookEventKind.ORDER_EXPIRED)
EV_CMD_REJECTED = int(mc.BookEventKind.COMMAND_REJECTED)
RJ_OK = 0
RJ_INVALID_COMMAND = int(mc.BookReject.INVALID_COMMAND)
RJ_UNKNOWN_INSTRUMENT = int(mc.BookReject.UNKNOWN_INSTRUMENT)
RJ_INVALID_ACCOUNT = int(mc.BookReject.INVALID_ACCOUNT)

OPEN_ACCOUNT = int(r.RiskCommandKind.OPEN_ACCOUNT)
DEPOSIT = int(r.RiskCommandKind.DEPOSIT)
WITHDRAW = int(r.RiskCommandKind.WITHDRAW)
SET_ORACLE_PRICE = int(r.RiskCommandKind.SET_ORACLE_PRICE)
REGISTER_CAPACITY = int(r.RiskCommandKind.REGISTER_CAPACITY)
SET_LIMITS = int(r.RiskCommandKind.SET_LIMITS)
SET_KILL_SWITCH = int(r.RiskCommandKind.SET_KILL_SWITCH)
SET_INSTRUMENT_STATUS = int(r.RiskCommandKind.SET_INSTRUMENT_STATUS)
NEW_ORDER = int(mc.BookCommandKind.NEW_ORDER)
EV_ACCOUNT_OPENED = int(r.RiskEventKind.ACCOUNT_OPENED)
EV_CAPACITY_REGISTERED = int(r.RiskEventKind.CAPACITY_REGISTERED)
EV_DEPOSITED = int(r.RiskEventKind.DEPOSITED)
EV_INSTRUMENT_STATUS_CHANGED = int(r.RiskEventKind.INSTRUMENT_STATUS_CHANGED)
EV_KILL_SWITCH_SET = int(r.RiskEventKind.KILL_SWITCH_SET)
EV_LIMITS_SET = int(r.RiskEventKind.LIMITS_SET)
EV_ORACLE_PRICE_SET = int(r.RiskEventKind.ORACLE_PRICE_SET)
EV_WITHDRAWN = int(r.RiskEventKind.WITHDRAWN)

RJ_UNKNOWN_ACCOUNT = int(r.RiskReject.UNKNOWN_ACCOUNT)
RJ_ACCOUNT_EXISTS = int(r.RiskReject.ACCOUNT_EXISTS)
RJ_INVALID_ROLE = int(r.RiskReject.INVALID_ROLE)
RJ_UNKNOWN_ASSET = int(r.RiskReject.UNKNOWN_ASSET)
RJ_INVALID_AMOUNT = int(r.RiskReject.INVALID_AMOUNT)
RJ_INSUFFICIENT_BALANCE = int(r.RiskReject.INSUFFICIENT_BALANCE)
RJ_INSUFFICIENT_COLLATERAL = int(r.RiskReject.INSUFFICIENT_COLLATERAL)
RJ_INSUFFICIENT_INVENTORY = int(r.RiskReject.INSUFFICIENT_INVENTORY)
RJ_OUTSIDE_PRICE_BAND = int(r.RiskReject.OUTSIDE_PRICE_BAND)
RJ_LIMIT_ORDER_QUANTITY = int(r.RiskReject.LIMIT_ORDER_QUANTITY)
RJ_LIMIT_ORDER_NOTIONAL = int(r.RiskReject.LIMIT_ORDER_NOTIONAL)
RJ_LIMIT_OPEN_ORDERS = int(r.RiskReject.LIMIT_OPEN_ORDERS)
RJ_LIMIT_POSITION = int(r.RiskReject.LIMIT_POSITION)
RJ_INSTRUMENT_NOT_TRADING = int(r.RiskReject.INSTRUMENT_NOT_TRADING)
RJ_INSTRUMENT_HALTED = int(r.RiskReject.INSTRUMENT_HALTED)
RJ_ACCOUNT_KILL_SWITCH = int(r.RiskReject.ACCOUNT_KILL_SWITCH)
RJ_GLOBAL_KILL_SWITCH = int(r.RiskReject.GLOBAL_KILL_SWITCH)
RJ_NOT_A_PROVIDER = int(r.RiskReject.NOT_A_PROVIDER)
RJ_INVALID_STATUS_TRANSITION = int(r.RiskReject.INVALID_STATUS_TRANSITION)
RJ_INVALID_ORACLE_PRICE = int(r.RiskReject.INVALID_ORACLE_PRICE)
RJ_OUTDATED_ORACLE_PRICE = int(r.RiskReject.OUTDATED_ORACLE_PRICE)
RJ_INVALID_LIMITS = int(r.RiskReject.INVALID_LIMITS)

TRADING = int(r.InstrumentState.TRADING)
HALTED = int(r.InstrumentState.HALTED)
PRE_OPEN = int(r.InstrumentState.PRE_OPEN)
PROVIDER = int(r.Role.PROVIDER)
TRANSITIONS = np.array(r.TRANSITION_BITS, dtype=np.int64)
BPS = 10_000
NS = 1_000_000_000
MAX_AMOUNT = 1 << 62
INSTR_MASK = (1 << r.INSTRUMENT_BITS) - 1

# Risk's own growth statuses, after the book's (matching.kernel 0-5).
GROW_RISK_ACCOUNTS = 10
GROW_POSITIONS = 11


# -- arithmetic --------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def fee(notional: int, bps: int) -> int:
    """Fee on a fill, rounded toward the trader: a charge down, a rebate down."""
    if bps >= 0:
        return notional * bps // BPS
    return -(notional * -bps // BPS)


@njit(cache=True, inline="always")
def reserve_for(price: int, leaves: int, taker_bps: int) -> int:
    """Quote units a buy order of ``leaves`` at ``price`` holds back (taker fee rounded up)."""
    notional = price * leaves
    return notional + (notional * taker_bps + BPS - 1) // BPS


@njit(cache=True, inline="always")
def token_value(amount: int, unit_value: int, decimals: int) -> int:
    """Quote units for ``amount`` base units at ``unit_value`` per whole token, rounded down."""
    if amount <= 0 or unit_value <= 0:
        return 0
    scale = 10**decimals
    whole = amount // scale
    if whole > MAX_AMOUNT // unit_value:
        return MAX_AMOUNT
    return whole * unit_value + (amount % scale) * unit_value // scale


@njit(cache=True, inline="always")
def usable_unit_value(assets, k: int, now_ns: int) -> int:
    """An asset's value per token for new reservations, or 0 if its price is not usable."""
    if assets[k, r.K_STATUS] != r.ORACLE_TRADING:
        return 0
    if now_ns // NS - assets[k, r.K_PUBLISH_TS] > assets[k, r.K_MAX_AGE]:
        return 0
    if assets[k, r.K_CONF] * BPS > assets[k, r.K_MAX_CONF_BPS] * assets[k, r.K_PRICE]:
        return 0
    return assets[k, r.K_UNIT_VALUE]


@njit(cache=True)
def unit_value_of(price: int, conf: int, expo: int, haircut_bps: int) -> int:
    """(price - conf) * 10**expo USDC per token, in micro-USDC, less the haircut; -1 if
    it does not fit."""
    p = price - conf
    if p <= 0:
        return 0
    shift = 6 + expo
    if shift >= 0:
        if shift > 18 or p > MAX_AMOUNT // 10**shift:
            return -1
        v = p * 10**shift
    else:
        if shift < -18:
            return 0
        v = p // 10**-shift
    if v > MAX_AMOUNT // BPS:
        return -1
    return v * (BPS - haircut_bps) // BPS


@njit(cache=True, inline="always")
def collateral_value(rs, acct: int, now_ns: int) -> int:
    balances = rs.balances
    assets = rs.assets
    total = balances[acct, r.USDC]
    for k in range(1, assets.shape[0]):
        total += token_value(
            balances[acct, k], usable_unit_value(assets, k, now_ns), assets[k, r.K_DECIMALS]
        )
    return total


@njit(cache=True, inline="always")
def available(rs, acct: int, now_ns: int) -> int:
    return collateral_value(rs, acct, now_ns) - rs.accounts[acct, r.A_RESERVED]


@njit(cache=True)
def withdrawable(rs, acct: int, k: int) -> int:
    """The most of asset ``k`` a WITHDRAW by open account ``acct`` would be granted at the
    last command's time: exactly the amounts ``run_command`` accepts are 1..this. A query
    (the engine's balances), not part of a batch."""
    held = rs.balances[acct, k]
    if held <= 0:
        return 0
    now_ns = rs.globals[r.G_NOW]
    budget = max(available(rs, acct, now_ns), 0)  # a withdrawal may lose this much value
    if k == r.USDC:
        return min(held, budget)
    unit = usable_unit_value(rs.assets, k, now_ns)
    dec = rs.assets[k, r.K_DECIMALS]
    value = token_value(held, unit, dec)
    lo, hi = 0, held  # the value lost grows with the amount: bisect for the last that fits
    while lo < hi:
        mid = hi - (hi - lo) // 2
        if value - token_value(held - mid, unit, dec) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


# -- positions: open addressing on (account, instrument) ---------------------------------------
# ``pmap`` holds (key, row + 1) pairs, at most half the slots used; row + 1 == 0 is empty.
# The key sits beside the row so a probe settles in the map's cache line, and a lookup
# costs the map line plus the position's row, two loads the engine can prefetch.
@njit(cache=True, inline="always")
def _slot0(key: int, mask: int) -> int:
    h = key * -7046029254386353131  # multiply first: every key bit reaches the low bits
    h ^= h >> 29
    return h & mask


@njit(cache=True, inline="always")
def _slot_mask(pmap) -> int:
    return (pmap.shape[0] >> 1) - 1


@njit(cache=True, inline="always")
def find_position(rs, acct: int, instr: int) -> int:
    pmap = rs.pmap
    key = (acct << r.INSTRUMENT_BITS) | instr
    mask = _slot_mask(pmap)
    s = _slot0(key, mask)
    while True:
        row = pmap[2 * s + 1] - 1
        if row < 0:
            return -1
        if pmap[2 * s] == key:
            return row
        s = (s + 1) & mask


@njit(cache=True, inline="always")
def prefetch_position_slot(rs, acct: int, instr: int) -> None:
    """Step one of looking (acct, instr) up ahead of time: load its home slot."""
    pmap = rs.pmap
    key = (acct << r.INSTRUMENT_BITS) | instr
    mk.prefetch_word(pmap, 2 * _slot0(key, _slot_mask(pmap)))


@njit(cache=True, inline="always")
def prefetch_position_row(rs, acct: int, instr: int) -> None:
    """Step two, once the slot is cached: load the row of (acct, instr), found by probing
    the map (a row can span two cache lines). Nothing if it has no row yet."""
    row = find_position(rs, acct, instr)
    if row >= 0:
        mk.prefetch_word(rs.positions, row * r.PF)
        mk.prefetch_word(rs.positions, row * r.PF + r.PF - 1)


@njit(cache=True, inline="always")
def position_room(rs, acct: int, instr: int) -> bool:
    """Whether (acct, instr) has a row or one can be added without growing."""
    if find_position(rs, acct, instr) >= 0:
        return True
    used = rs.globals[r.G_POSITIONS]
    return used < rs.positions.shape[0] and 4 * (used + 1) <= rs.pmap.shape[0]


@njit(cache=True, inline="always")
def _map_insert(pmap, key: int, row: int) -> None:
    mask = _slot_mask(pmap)
    s = _slot0(key, mask)
    while pmap[2 * s + 1] != 0:
        s = (s + 1) & mask
    pmap[2 * s] = key
    pmap[2 * s + 1] = row + 1


@njit(cache=True, inline="always")
def get_position(rs, acct: int, instr: int) -> int:
    row = find_position(rs, acct, instr)
    if row >= 0:
        return row
    g = rs.globals
    row = g[r.G_POSITIONS]
    g[r.G_POSITIONS] = row + 1
    key = (acct << r.INSTRUMENT_BITS) | instr
    rs.positions[row, r.P_KEY] = key
    _map_insert(rs.pmap, key, row)
    return row


@njit(cache=True)
def rehash_positions(positions, used, pmap) -> None:
    for row in range(used):
        _map_insert(pmap, positions[row, r.P_KEY], row)


# -- pre-trade ---------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def account_open(rs, acct: int) -> bool:
    return 0 <= acct < rs.accounts.shape[0] and rs.accounts[acct, r.A_OPEN] == 1


@njit(cache=True, inline="always")
def band_reference(rs, instr: int, best_bid: int, best_ask: int) -> int:
    last = rs.instruments[instr, r.I_LAST_PRICE]
    if last > 0:
        return last
    if best_bid > 0 and best_ask > 0:
        return (best_bid + best_ask) // 2
    return rs.instruments[instr, r.I_REF_PRICE]


@njit(cache=True, inline="always")
def _gate(rs, acct: int, instr: int) -> int:
    """Checks every order entry shares: account, instrument status, kill switches."""
    if not account_open(rs, acct):
        return RJ_UNKNOWN_ACCOUNT
    if instr >= rs.instruments.shape[0] or rs.instruments[instr, r.I_LISTED] == 0:
        return RJ_UNKNOWN_INSTRUMENT
    status = rs.instruments[instr, r.I_STATUS]
    cutoff = rs.instruments[instr, r.I_CUTOFF]
    if cutoff > 0 and rs.globals[r.G_NOW] >= cutoff:
        return RJ_INSTRUMENT_NOT_TRADING
    if status == HALTED:
        return RJ_INSTRUMENT_HALTED
    if status != TRADING:
        return RJ_INSTRUMENT_NOT_TRADING
    if rs.globals[r.G_KILL_ALL] != 0:
        return RJ_GLOBAL_KILL_SWITCH
    if rs.accounts[acct, r.A_KILLED] != 0:
        return RJ_ACCOUNT_KILL_SWITCH
    return RJ_OK


@njit(cache=True, inline="always")
def _limits_and_band(rs, acct, instr, side, price, qty, open_delta, ref) -> int:
    a = rs.accounts
    if qty > a[acct, r.A_MAX_QTY]:
        return RJ_LIMIT_ORDER_QUANTITY
    if price > a[acct, r.A_MAX_NOTIONAL] // qty:
        return RJ_LIMIT_ORDER_NOTIONAL
    row = find_position(rs, acct, instr)
    pos = open_buy = open_sell = 0
    if row >= 0:
        p = rs.positions
        pos = p[row, r.P_POSITION]
        open_buy = p[row, r.P_OPEN_BUY]
        open_sell = p[row, r.P_OPEN_SELL]
    if side == BUY:
        exposure = pos + open_buy + open_delta
    else:
        exposure = open_sell + open_delta - pos
    if exposure > a[acct, r.A_MAX_POSITION]:
        return RJ_LIMIT_POSITION
    band = rs.globals[r.G_BAND_BPS]
    if band > 0 and ref > 0 and abs(price - ref) * BPS > band * ref:
        return RJ_OUTSIDE_PRICE_BAND
    return RJ_OK


@njit(cache=True, inline="always")
def _cover(rs, acct, instr, side, need_value, need_units, now_ns) -> int:
    if side == BUY:
        if need_value > 0 and available(rs, acct, now_ns) < need_value:
            return RJ_INSUFFICIENT_COLLATERAL
        return RJ_OK
    if need_units > 0:
        row = find_position(rs, acct, instr)
        free = 0
        if row >= 0:
            free = rs.positions[row, r.P_INVENTORY] - rs.positions[row, r.P_INV_RESERVED]
        if free < need_units:
            return RJ_INSUFFICIENT_INVENTORY
    return RJ_OK


@njit(cache=True, inline="always")
def check_new(rs, acct, instr, side, price, qty, ref, now_ns) -> int:
    """Risk's verdict on a new order the book has already found well formed."""
    code = _gate(rs, acct, instr)
    if code != RJ_OK:
        return code
    if rs.accounts[acct, r.A_OPEN_ORDERS] >= rs.accounts[acct, r.A_MAX_OPEN]:
        return RJ_LIMIT_OPEN_ORDERS
    code = _limits_and_band(rs, acct, instr, side, price, qty, qty, ref)
    if code != RJ_OK:
        return code
    need = reserve_for(price, qty, rs.globals[r.G_TAKER_BPS])
    return _cover(rs, acct, instr, side, need, qty, now_ns)


@njit(cache=True, inline="always")
def check_replace(
    rs, acct, instr, side, old_price, old_leaves, price, qty, new_leaves, ref, now_ns
):
    """Risk's verdict on a well-formed replace. A pure reduction is always allowed."""
    if price == old_price and new_leaves <= old_leaves:
        return RJ_OK
    code = _gate(rs, acct, instr)
    if code != RJ_OK:
        return code
    code = _limits_and_band(rs, acct, instr, side, price, qty, new_leaves - old_leaves, ref)
    if code != RJ_OK:
        return code
    taker = rs.globals[r.G_TAKER_BPS]
    need = reserve_for(price, new_leaves, taker) - reserve_for(old_price, old_leaves, taker)
    return _cover(rs, acct, instr, side, need, new_leaves - old_leaves, now_ns)


# -- post-trade --------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _release(rs, acct, row, side, price, before, after) -> None:
    """An order's leaves went from ``before`` to ``after`` without trading."""
    p = rs.positions
    if side == BUY:
        taker = rs.globals[r.G_TAKER_BPS]
        rs.accounts[acct, r.A_RESERVED] -= reserve_for(price, before, taker) - reserve_for(
            price, after, taker
        )
        p[row, r.P_OPEN_BUY] -= before - after
    else:
        p[row, r.P_INV_RESERVED] -= before - after
        p[row, r.P_OPEN_SELL] -= before - after
    if after == 0 and before > 0:
        rs.accounts[acct, r.A_OPEN_ORDERS] -= 1


@njit(cache=True, inline="always")
def _fill(rs, ev, e, taker_limit) -> None:
    acct = ev[e, mc.E_ACCOUNT]
    instr = ev[e, mc.E_INSTRUMENT]
    side = ev[e, mc.E_SIDE]
    price = ev[e, mc.E_PRICE]
    q = ev[e, mc.E_QTY]
    leaves = ev[e, mc.E_LEAVES]
    maker = ev[e, mc.E_LIQUIDITY] == MAKER
    g = rs.globals
    notional = price * q
    charged = fee(notional, g[r.G_MAKER_BPS] if maker else g[r.G_TAKER_BPS])
    ev[e, mc.E_REASON] = charged  # fills carry their fee in the reason column
    row = get_position(rs, acct, instr)
    p = rs.positions
    limit = price if maker else taker_limit
    _release(rs, acct, row, side, limit, leaves + q, leaves)
    rs.balances[r.FEE_ACCOUNT, r.USDC] += charged
    if side == BUY:
        rs.balances[acct, r.USDC] -= notional + charged
        p[row, r.P_POSITION] += q
        p[row, r.P_INVENTORY] += q
    else:
        p[row, r.P_POSITION] -= q
        p[row, r.P_INVENTORY] -= q
        p[row, r.P_RECEIVABLE] += notional - charged
        rs.instruments[instr, r.I_ESCROW] += notional - charged
    rs.instruments[instr, r.I_LAST_PRICE] = price


@njit(cache=True, inline="always")
def _accepted(rs, acct, instr, side, price, qty) -> None:
    row = get_position(rs, acct, instr)
    p = rs.positions
    if side == BUY:
        rs.accounts[acct, r.A_RESERVED] += reserve_for(price, qty, rs.globals[r.G_TAKER_BPS])
        p[row, r.P_OPEN_BUY] += qty
    else:
        p[row, r.P_INV_RESERVED] += qty
        p[row, r.P_OPEN_SELL] += qty
    rs.accounts[acct, r.A_OPEN_ORDERS] += 1


@njit(cache=True, inline="always")
def _replaced(rs, acct, instr, side, old_price, old_leaves, price, leaves) -> None:
    row = get_position(rs, acct, instr)
    p = rs.positions
    if side == BUY:
        taker = rs.globals[r.G_TAKER_BPS]
        rs.accounts[acct, r.A_RESERVED] += reserve_for(price, leaves, taker) - reserve_for(
            old_price, old_leaves, taker
        )
        p[row, r.P_OPEN_BUY] += leaves - old_leaves
    else:
        p[row, r.P_INV_RESERVED] += leaves - old_leaves
        p[row, r.P_OPEN_SELL] += leaves - old_leaves


@njit(cache=True, inline="always")
def apply_events(rs, ev, start, end, taker_limit, old_price, old_leaves) -> None:
    """Book-keep the book's events ``ev[start:end]`` of one command.

    ``taker_limit`` is the command's price (the taker's limit for its fills);
    ``old_price``/``old_leaves`` describe the order before a replace.
    """
    for e in range(start, end):
        kind = ev[e, mc.E_KIND]
        if kind == EV_FILLED:
            _fill(rs, ev, e, taker_limit)
        elif kind == EV_ACCEPTED:
            _accepted(
                rs,
                ev[e, mc.E_ACCOUNT],
                ev[e, mc.E_INSTRUMENT],
                ev[e, mc.E_SIDE],
                ev[e, mc.E_PRICE],
                ev[e, mc.E_QTY],
            )
        elif kind == EV_CANCELLED or kind == EV_EXPIRED:
            acct = ev[e, mc.E_ACCOUNT]
            row = get_position(rs, acct, ev[e, mc.E_INSTRUMENT])
            leaves = ev[e, mc.E_LEAVES]
            _release(
                rs, acct, row, ev[e, mc.E_SIDE], ev[e, mc.E_PRICE], leaves + ev[e, mc.E_QTY], leaves
            )
        elif kind == EV_REPLACED:
            _replaced(
                rs,
                ev[e, mc.E_ACCOUNT],
                ev[e, mc.E_INSTRUMENT],
                ev[e, mc.E_SIDE],
                old_price,
                old_leaves,
                ev[e, mc.E_PRICE],
                ev[e, mc.E_LEAVES],
            )


# -- risk's own commands -----------------------------------------------------------------------
@njit(cache=True, inline="always")
def needs_growth(rs, cmds, i) -> int:
    """GROW_* if the command needs a row the arrays do not have room for, else 0."""
    kind = cmds[i, mc.C_KIND]
    acct = cmds[i, mc.C_ACCOUNT]
    if kind == OPEN_ACCOUNT:
        if acct >= rs.accounts.shape[0] and acct < (1 << 24):
            return GROW_RISK_ACCOUNTS
        return 0
    if kind == NEW_ORDER or kind == REGISTER_CAPACITY:
        instr = cmds[i, mc.C_INSTRUMENT]
        if account_open(rs, acct) and 0 <= instr <= INSTR_MASK:
            if not position_room(rs, acct, instr):
                return GROW_POSITIONS
    return 0


@njit(cache=True, inline="always")
def _event(ev, n, cmds, i, kind, instr, acct, side, price, qty, leaves, shown, extra, reason):
    ev[n, mc.E_SEQ] = cmds[i, mc.C_SEQ]
    ev[n, mc.E_KIND] = kind
    ev[n, mc.E_INSTRUMENT] = instr
    ev[n, mc.E_ORDER_ID] = 0
    ev[n, mc.E_ACCOUNT] = acct
    ev[n, mc.E_SIDE] = side
    ev[n, mc.E_PRICE] = price
    ev[n, mc.E_QTY] = qty
    ev[n, mc.E_LEAVES] = leaves
    ev[n, mc.E_SHOWN] = shown
    ev[n, mc.E_TRADE_ID] = extra
    ev[n, mc.E_LIQUIDITY] = 0
    ev[n, mc.E_REASON] = reason
    ev[n, mc.E_CONTRA_ORDER_ID] = 0
    ev[n, mc.E_CONTRA_ACCOUNT] = 0
    return n + 1


@njit(cache=True, inline="always")
def reject_command(ev, n, cmds, i, code):
    """A refused command: echo what identifies it, with the reason."""
    n = _event(
        ev,
        n,
        cmds,
        i,
        EV_CMD_REJECTED,
        cmds[i, mc.C_INSTRUMENT],
        cmds[i, mc.C_ACCOUNT],
        0,
        cmds[i, mc.C_PRICE],
        cmds[i, mc.C_QTY],
        0,
        0,
        cmds[i, mc.C_KIND],
        code,
    )
    ev[n - 1, mc.E_ORDER_ID] = cmds[i, mc.C_ORDER_ID]
    return n


@njit(cache=True, inline="always")
def _asset_amount_code(rs, cmds, i) -> int:
    if not account_open(rs, cmds[i, mc.C_ACCOUNT]):
        return RJ_UNKNOWN_ACCOUNT
    k = cmds[i, mc.C_INSTRUMENT]
    if k < 0 or k >= rs.assets.shape[0]:
        return RJ_UNKNOWN_ASSET
    amount = cmds[i, mc.C_QTY]
    if amount <= 0 or amount > MAX_AMOUNT:
        return RJ_INVALID_AMOUNT
    return RJ_OK


@njit(cache=True)
def run_command(rs, cmds, i, ev, n, max_accounts):
    """One of risk's own commands; writes exactly one event. Returns the new ``n``."""
    kind = cmds[i, mc.C_KIND]
    acct = cmds[i, mc.C_ACCOUNT]
    instr = cmds[i, mc.C_INSTRUMENT]
    a = rs.accounts
    bal = rs.balances
    g = rs.globals
    now_ns = g[r.G_NOW]
    if kind == OPEN_ACCOUNT:
        role = cmds[i, mc.C_SIDE]
        if acct < 0 or acct >= max_accounts or acct >= a.shape[0]:
            return reject_command(ev, n, cmds, i, RJ_INVALID_ACCOUNT)
        if role < 1 or role > 4:
            return reject_command(ev, n, cmds, i, RJ_INVALID_ROLE)
        if a[acct, r.A_OPEN] == 1:
            return reject_command(ev, n, cmds, i, RJ_ACCOUNT_EXISTS)
        a[acct, r.A_OPEN] = 1
        a[acct, r.A_ROLE] = role
        base = r.G_LIMITS + 4 * role
        a[acct, r.A_MAX_QTY] = g[base]
        a[acct, r.A_MAX_NOTIONAL] = g[base + 1]
        a[acct, r.A_MAX_OPEN] = g[base + 2]
        a[acct, r.A_MAX_POSITION] = g[base + 3]
        return _event(ev, n, cmds, i, EV_ACCOUNT_OPENED, 0, acct, role, 0, 0, 0, 0, 0, 0)
    if kind == DEPOSIT or kind == WITHDRAW:
        code = _asset_amount_code(rs, cmds, i)
        if code != RJ_OK:
            return reject_command(ev, n, cmds, i, code)
        amount = cmds[i, mc.C_QTY]
        if kind == DEPOSIT:
            if bal[acct, instr] > MAX_AMOUNT - amount:
                return reject_command(ev, n, cmds, i, RJ_INVALID_AMOUNT)
            bal[acct, instr] += amount
            ref = cmds[i, mc.C_ORDER_ID]
            return _event(
                ev, n, cmds, i, EV_DEPOSITED, instr, acct, 0, 0, amount, bal[acct, instr], 0, ref, 0
            )
        if amount > bal[acct, instr]:
            return reject_command(ev, n, cmds, i, RJ_INSUFFICIENT_BALANCE)
        value_lost = amount
        if instr != r.USDC:
            assets = rs.assets
            unit = usable_unit_value(assets, instr, now_ns)
            dec = assets[instr, r.K_DECIMALS]
            value_lost = token_value(bal[acct, instr], unit, dec) - token_value(
                bal[acct, instr] - amount, unit, dec
            )
        if value_lost > 0 and available(rs, acct, now_ns) < value_lost:
            return reject_command(ev, n, cmds, i, RJ_INSUFFICIENT_BALANCE)
        bal[acct, instr] -= amount
        ref = cmds[i, mc.C_ORDER_ID]
        return _event(
            ev, n, cmds, i, EV_WITHDRAWN, instr, acct, 0, 0, amount, bal[acct, instr], 0, ref, 0
        )
    if kind == SET_ORACLE_PRICE:
        assets = rs.assets
        if instr < 1 or instr >= assets.shape[0]:
            return reject_command(ev, n, cmds, i, RJ_UNKNOWN_ASSET)
        price = cmds[i, mc.C_PRICE]
        conf = cmds[i, mc.C_QTY]
        expo = cmds[i, mc.C_DISPLAY_QTY]
        publish = cmds[i, mc.C_EXPIRE_TS]
        status = cmds[i, mc.C_SIDE]
        if price <= 0 or conf < 0 or expo < -18 or expo > 18 or publish <= 0 or status < 0:
            return reject_command(ev, n, cmds, i, RJ_INVALID_ORACLE_PRICE)
        unit = unit_value_of(price, conf, expo, assets[instr, r.K_HAIRCUT_BPS])
        dec = assets[instr, r.K_DECIMALS]
        if unit < 0 or (unit > 0 and unit > MAX_AMOUNT // 10**dec):
            return reject_command(ev, n, cmds, i, RJ_INVALID_ORACLE_PRICE)
        if publish <= assets[instr, r.K_PUBLISH_TS]:
            return reject_command(ev, n, cmds, i, RJ_OUTDATED_ORACLE_PRICE)
        assets[instr, r.K_PRICE] = price
        assets[instr, r.K_CONF] = conf
        assets[instr, r.K_EXPO] = expo
        assets[instr, r.K_PUBLISH_TS] = publish
        assets[instr, r.K_STATUS] = status
        assets[instr, r.K_UNIT_VALUE] = unit
        return _event(
            ev,
            n,
            cmds,
            i,
            EV_ORACLE_PRICE_SET,
            instr,
            0,
            status,
            price,
            conf,
            unit,
            expo,
            publish,
            0,
        )
    if kind == REGISTER_CAPACITY:
        if not account_open(rs, acct):
            return reject_command(ev, n, cmds, i, RJ_UNKNOWN_ACCOUNT)
        if a[acct, r.A_ROLE] != PROVIDER:
            return reject_command(ev, n, cmds, i, RJ_NOT_A_PROVIDER)
        ins = rs.instruments
        if instr < 0 or instr >= ins.shape[0] or ins[instr, r.I_LISTED] == 0:
            return reject_command(ev, n, cmds, i, RJ_UNKNOWN_INSTRUMENT)
        status = ins[instr, r.I_STATUS]
        if status != PRE_OPEN and status != TRADING and status != HALTED:
            return reject_command(ev, n, cmds, i, RJ_INSTRUMENT_NOT_TRADING)
        units = cmds[i, mc.C_QTY]
        row = find_position(rs, acct, instr)
        held = rs.positions[row, r.P_INVENTORY] if row >= 0 else 0
        if units <= 0 or units > MAX_AMOUNT - held:
            return reject_command(ev, n, cmds, i, RJ_INVALID_AMOUNT)
        row = get_position(rs, acct, instr)
        rs.positions[row, r.P_INVENTORY] += units
        return _event(
            ev,
            n,
            cmds,
            i,
            EV_CAPACITY_REGISTERED,
            instr,
            acct,
            0,
            0,
            units,
            rs.positions[row, r.P_INVENTORY],
            0,
            0,
            0,
        )
    if kind == SET_LIMITS:
        if not account_open(rs, acct):
            return reject_command(ev, n, cmds, i, RJ_UNKNOWN_ACCOUNT)
        q = cmds[i, mc.C_QTY]
        notional = cmds[i, mc.C_PRICE]
        opens = cmds[i, mc.C_DISPLAY_QTY]
        position = cmds[i, mc.C_EXPIRE_TS]
        if q <= 0 or notional <= 0 or opens <= 0 or position <= 0:
            return reject_command(ev, n, cmds, i, RJ_INVALID_LIMITS)
        a[acct, r.A_MAX_QTY] = q
        a[acct, r.A_MAX_NOTIONAL] = notional
        a[acct, r.A_MAX_OPEN] = opens
        a[acct, r.A_MAX_POSITION] = position
        return _event(ev, n, cmds, i, EV_LIMITS_SET, 0, acct, 0, notional, q, position, opens, 0, 0)
    if kind == SET_KILL_SWITCH:
        scope = cmds[i, mc.C_SIDE]
        on = cmds[i, mc.C_QTY]
        if (scope != 1 and scope != 2) or (on != 0 and on != 1):
            return reject_command(ev, n, cmds, i, RJ_INVALID_COMMAND)
        if scope == 1:
            if not account_open(rs, acct):
                return reject_command(ev, n, cmds, i, RJ_UNKNOWN_ACCOUNT)
            a[acct, r.A_KILLED] = on
        else:
            g[r.G_KILL_ALL] = on
        return _event(
            ev,
            n,
            cmds,
            i,
            EV_KILL_SWITCH_SET,
            0,
            acct if scope == 1 else 0,
            scope,
            0,
            on,
            0,
            0,
            0,
            0,
        )
    if kind == SET_INSTRUMENT_STATUS:
        ins = rs.instruments
        if instr < 0 or instr >= ins.shape[0] or ins[instr, r.I_LISTED] == 0:
            return reject_command(ev, n, cmds, i, RJ_UNKNOWN_INSTRUMENT)
        new = cmds[i, mc.C_SIDE]
        old = ins[instr, r.I_STATUS]
        if new < 1 or new > r.HIGHEST_STATUS or (TRANSITIONS[old] >> new) & 1 == 0:
            return reject_command(ev, n, cmds, i, RJ_INVALID_STATUS_TRANSITION)
        ins[instr, r.I_STATUS] = new
        return _event(
            ev, n, cmds, i, EV_INSTRUMENT_STATUS_CHANGED, instr, 0, new, 0, old, 0, 0, 0, 0
        )
    return reject_command(ev, n, cmds, i, RJ_INVALID_COMMAND)

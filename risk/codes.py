"""Risk's command kinds, event kinds, reject codes and array layouts.

They extend the order book's (``matching.codes``): the same 15-column command and event
rows carry deposits, oracle prices and the rest, with kinds and codes numbered after the
book's so that one row format and one reject enum serve every stage.
"""

from __future__ import annotations

from enum import IntEnum


class RiskCommandKind(IntEnum):
    """Kinds after the book's 1-5. Column use is documented in ``exchange.commands``."""

    OPEN_ACCOUNT = 16
    DEPOSIT = 17
    WITHDRAW = 18
    SET_ORACLE_PRICE = 19
    REGISTER_CAPACITY = 20
    SET_LIMITS = 21
    SET_KILL_SWITCH = 22
    SET_INSTRUMENT_STATUS = 23
    LIST_INSTRUMENT = 24


class RiskEventKind(IntEnum):
    ACCOUNT_OPENED = 16
    DEPOSITED = 17
    WITHDRAWN = 18
    ORACLE_PRICE_SET = 19
    CAPACITY_REGISTERED = 20
    LIMITS_SET = 21
    KILL_SWITCH_SET = 22
    INSTRUMENT_STATUS_CHANGED = 23
    INSTRUMENT_LISTED = 24


class RiskReject(IntEnum):
    """Why risk refused a command; numbered after the book's codes (0-20)."""

    UNKNOWN_ACCOUNT = 32
    ACCOUNT_EXISTS = 33
    INVALID_ROLE = 34
    UNKNOWN_ASSET = 35
    INVALID_AMOUNT = 36
    INSUFFICIENT_BALANCE = 37
    INSUFFICIENT_COLLATERAL = 38
    INSUFFICIENT_INVENTORY = 39
    OUTSIDE_PRICE_BAND = 40
    LIMIT_ORDER_QUANTITY = 41
    LIMIT_ORDER_NOTIONAL = 42
    LIMIT_OPEN_ORDERS = 43
    LIMIT_POSITION = 44
    INSTRUMENT_NOT_TRADING = 45
    INSTRUMENT_HALTED = 46
    ACCOUNT_KILL_SWITCH = 47
    GLOBAL_KILL_SWITCH = 48
    NOT_A_PROVIDER = 49
    INVALID_STATUS_TRANSITION = 50
    INVALID_ORACLE_PRICE = 51
    OUTDATED_ORACLE_PRICE = 52
    INVALID_LIMITS = 53
    INSTRUMENT_EXISTS = 54
    INVALID_INSTRUMENT_SPEC = 55
    ACCOUNT_CAPACITY_FULL = 56


RISK_REJECT_REASONS: dict[RiskReject, str] = {
    RiskReject.UNKNOWN_ACCOUNT: "no open account with this id",
    RiskReject.ACCOUNT_EXISTS: "an account with this id is already open",
    RiskReject.INVALID_ROLE: "role must be buyer, provider, market maker or operator",
    RiskReject.UNKNOWN_ASSET: "no such asset",
    RiskReject.INVALID_AMOUNT: "amount must be a positive integer of base units",
    RiskReject.INSUFFICIENT_BALANCE: "withdrawal exceeds the available balance",
    RiskReject.INSUFFICIENT_COLLATERAL: "available collateral does not cover price x qty + fee",
    RiskReject.INSUFFICIENT_INVENTORY: "available inventory does not cover the quantity",
    RiskReject.OUTSIDE_PRICE_BAND: "price too far from the reference price",
    RiskReject.LIMIT_ORDER_QUANTITY: "quantity above the account's maximum order quantity",
    RiskReject.LIMIT_ORDER_NOTIONAL: "price x quantity above the account's maximum notional",
    RiskReject.LIMIT_OPEN_ORDERS: "the account has its maximum number of open orders",
    RiskReject.LIMIT_POSITION: "the order could take the position past the account's maximum",
    RiskReject.INSTRUMENT_NOT_TRADING: "the instrument is not open for trading",
    RiskReject.INSTRUMENT_HALTED: "trading in the instrument is halted",
    RiskReject.ACCOUNT_KILL_SWITCH: "the account's kill switch is on",
    RiskReject.GLOBAL_KILL_SWITCH: "the exchange-wide kill switch is on",
    RiskReject.NOT_A_PROVIDER: "only provider accounts register capacity",
    RiskReject.INVALID_STATUS_TRANSITION: "the instrument cannot move to that status from its own",
    RiskReject.INVALID_ORACLE_PRICE: "oracle price fields out of range",
    RiskReject.OUTDATED_ORACLE_PRICE: "publish time not after the asset's current price",
    RiskReject.INVALID_LIMITS: "limits must be positive integers",
    RiskReject.INSTRUMENT_EXISTS: "an instrument with this id is already listed",
    RiskReject.INVALID_INSTRUMENT_SPEC: "instrument parameters are inconsistent",
    RiskReject.ACCOUNT_CAPACITY_FULL: "account id above the configured maximum",
}


class Role(IntEnum):
    BUYER = 1
    PROVIDER = 2
    MARKET_MAKER = 3
    OPERATOR = 4


class InstrumentState(IntEnum):
    """An instrument's status, as stored in the arrays and carried in rows."""

    PRE_OPEN = 1
    TRADING = 2
    HALTED = 3
    CLOSED = 4  # trading stopped at the window's cut-off
    DELIVERING = 5
    SETTLED = 6


# The only moves an instrument's status may make; anything else is refused
# (INVALID_STATUS_TRANSITION). The one table: the kernel reads it through the values derived
# below, the reference model directly (can_transition); documents point here, not copy it.
STATUS_TRANSITIONS: dict[InstrumentState, frozenset[InstrumentState]] = {
    InstrumentState.PRE_OPEN: frozenset({InstrumentState.TRADING, InstrumentState.CLOSED}),
    InstrumentState.TRADING: frozenset({InstrumentState.HALTED, InstrumentState.CLOSED}),
    InstrumentState.HALTED: frozenset({InstrumentState.TRADING, InstrumentState.CLOSED}),
    InstrumentState.CLOSED: frozenset({InstrumentState.DELIVERING}),
    InstrumentState.DELIVERING: frozenset({InstrumentState.SETTLED}),
    InstrumentState.SETTLED: frozenset(),
}

HIGHEST_STATUS = int(max(InstrumentState))
"""Statuses are 1..HIGHEST_STATUS; a compile-time constant for the kernel."""

# The table as a bit per target status, for the kernel: TRANSITION_BITS[from] >> to & 1.
TRANSITION_BITS: tuple[int, ...] = tuple(
    sum(1 << target for target in STATUS_TRANSITIONS[InstrumentState(s)]) if s else 0
    for s in range(HIGHEST_STATUS + 1)
)


def can_transition(current: InstrumentState, new: InstrumentState) -> bool:
    return new in STATUS_TRANSITIONS[current]


ORACLE_TRADING = 1  # Pyth's PriceStatus.TRADING
FEE_ACCOUNT = 0  # account 0 collects fees; it is opened at genesis with the operator role
USDC = 0  # asset 0 is the quote asset, valued at par

# -- array layouts (int64) -----------------------------------------------------------------
# accounts[A, AF]
A_OPEN = 0
A_ROLE = 1
A_KILLED = 2
A_RESERVED = 3  # quote units held back for open buy orders (price x leaves + taker fee)
A_OPEN_ORDERS = 4
A_MAX_QTY = 5
A_MAX_NOTIONAL = 6
A_MAX_OPEN = 7
A_MAX_POSITION = 8
AF = 9

# instruments[I, IF]
I_LISTED = 0
I_STATUS = 1
I_REF_PRICE = 2  # the listing's reference price
I_LAST_PRICE = 3  # last trade, 0 before the first
I_ESCROW = 4  # quote units paid by buyers, owed to sellers on delivery
I_CUTOFF = 5  # ns timestamp from which the window takes no orders (0: none)
IF = 6

# assets[K, KF]
K_DECIMALS = 0
K_HAIRCUT_BPS = 1
K_MAX_AGE = 2  # seconds an oracle price stays usable
K_MAX_CONF_BPS = 3  # confidence / price above this: the feed is not used
K_PRICE = 4  # Pyth mantissa
K_CONF = 5
K_EXPO = 6
K_PUBLISH_TS = 7  # seconds
K_STATUS = 8
K_UNIT_VALUE = 9  # quote units per whole token: (price - conf) * (1 - haircut); 0 unusable
KF = 10

# positions[P, PF]: one row per (account, instrument) that ever held or ordered anything
P_KEY = 0  # account << 20 | instrument
P_INVENTORY = 1  # units that can be sold: registered capacity + units bought
P_INV_RESERVED = 2  # units held back for open sell orders
P_POSITION = 3  # net traded quantity (bought - sold)
P_OPEN_BUY = 4  # leaves of open buy orders
P_OPEN_SELL = 5
P_RECEIVABLE = 6  # quote units owed to this seller from the instrument's escrow
PF = 7

# globals[GF]
G_NOW = 0  # timestamp of the last command (ns)
G_KILL_ALL = 1
G_TAKER_BPS = 2
G_MAKER_BPS = 3
G_BAND_BPS = 4
G_POSITIONS = 5  # rows of positions in use
G_LIMITS = 8  # default limits by role: G_LIMITS + 4 * role + (qty, notional, open, position)
GF = G_LIMITS + 4 * 5

INSTRUMENT_BITS = 20

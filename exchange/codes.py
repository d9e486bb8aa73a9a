"""One set of command kinds, event kinds and reject codes for every stage of the exchange.

The book (``matching.codes``: ``BookCommandKind``, ``BookEventKind``, ``BookReject``) and
risk (``risk.codes``: ``RiskCommandKind``, ``RiskEventKind``, ``RiskReject``) each number
their own kinds and codes in disjoint ranges so that both write the same rows. Clients, the
journal tools and the gateway should not have to know which stage refused a command, so the
enums here are the union of the stages' enums, written out member by member so that a
reader (and a type checker) sees every name; ``tests/exchange/test_codes_events.py`` checks
that each is exactly that union, with the same values, and that the ranges below hold.

Numbering (values are stable: they go on the wire):

- ``RejectCode``: 0-31 the order book, 32-63 risk, 64-95 reserved for the gateway and
  session layer (auth, rate limits, throttles).
- ``CommandKind`` and ``EventKind``: 0-15 the order book, 16-31 risk.
"""

from __future__ import annotations

from enum import IntEnum

from matching.codes import BOOK_REJECT_REASONS
from risk.codes import RISK_REJECT_REASONS

BOOK_REJECTS = range(0, 32)
RISK_REJECTS = range(32, 64)
GATEWAY_REJECTS = range(64, 96)
"""Reject codes kept free for the gateway/session layer; the cores never write them."""

BOOK_KINDS = range(0, 16)
RISK_KINDS = range(16, 32)


class RejectCode(IntEnum):
    """Why a command changed nothing, whichever stage refused it."""

    # the order book (matching.codes.BookReject), 0-31
    OK = 0
    INVALID_COMMAND = 1
    UNKNOWN_INSTRUMENT = 2
    INVALID_ACCOUNT = 3
    INVALID_ORDER_ID = 4
    INVALID_SIDE = 5
    INVALID_ORDER_TYPE = 6
    INVALID_TIME_IN_FORCE = 7
    INVALID_STP_MODE = 8
    INVALID_POST_ONLY = 9
    PRICE_OUT_OF_RANGE = 10
    PRICE_OFF_TICK = 11
    QUANTITY_OUT_OF_RANGE = 12
    QUANTITY_OFF_LOT = 13
    INVALID_DISPLAY_QUANTITY = 14
    INVALID_EXPIRE_TIME = 15
    DUPLICATE_ORDER_ID = 16
    ORDER_POOL_FULL = 17
    POST_ONLY_WOULD_TAKE = 18
    UNKNOWN_ORDER = 19
    REPLACE_BELOW_FILLED = 20
    # risk (risk.codes.RiskReject), 32-63
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


class CommandKind(IntEnum):
    """Kind of a command row (column C_KIND)."""

    # the order book (matching.codes.BookCommandKind), 0-15
    NEW_ORDER = 1
    CANCEL_ORDER = 2
    REPLACE_ORDER = 3
    MASS_CANCEL = 4
    CLOCK_TICK = 5
    # risk (risk.codes.RiskCommandKind), 16-31
    OPEN_ACCOUNT = 16
    DEPOSIT = 17
    WITHDRAW = 18
    SET_ORACLE_PRICE = 19
    REGISTER_CAPACITY = 20
    SET_LIMITS = 21
    SET_KILL_SWITCH = 22
    SET_INSTRUMENT_STATUS = 23
    LIST_INSTRUMENT = 24


class EventKind(IntEnum):
    """Kind of an event row (column E_KIND)."""

    # the order book (matching.codes.BookEventKind), 0-15
    ORDER_ACCEPTED = 1
    ORDER_REJECTED = 2
    ORDER_FILLED = 3
    ORDER_CANCELLED = 4
    ORDER_REPLACED = 5
    ORDER_EXPIRED = 6
    MASS_CANCEL_DONE = 7
    COMMAND_REJECTED = 8
    # risk (risk.codes.RiskEventKind), 16-31
    ACCOUNT_OPENED = 16
    DEPOSITED = 17
    WITHDRAWN = 18
    ORACLE_PRICE_SET = 19
    CAPACITY_REGISTERED = 20
    LIMITS_SET = 21
    KILL_SWITCH_SET = 22
    INSTRUMENT_STATUS_CHANGED = 23
    INSTRUMENT_LISTED = 24


REJECT_REASONS: dict[RejectCode, str] = {
    RejectCode(code): text
    for table in (BOOK_REJECT_REASONS, RISK_REJECT_REASONS)
    for code, text in table.items()
}


def reason(code: int) -> str:
    """Text for a reject code; never raises, since it labels whatever arrives on the wire."""
    try:
        return REJECT_REASONS[RejectCode(code)]
    except (ValueError, KeyError):
        return f"unknown reject code {code}"


class GatewayReject(IntEnum):
    """Why the gateway refused a request before it became a command (range 64-95)."""

    UNKNOWN_KEY = 64
    KEY_DISABLED = 65
    KEY_EXPIRED = 66
    IP_NOT_ALLOWED = 67
    TIMESTAMP_OUTSIDE_WINDOW = 68
    BAD_SIGNATURE = 69
    REPLAYED_SIGNATURE = 70
    MISSING_SCOPE = 71


GATEWAY_REJECT_REASONS: dict[GatewayReject, str] = {
    GatewayReject.UNKNOWN_KEY: "unknown API key",
    GatewayReject.KEY_DISABLED: "the API key is disabled",
    GatewayReject.KEY_EXPIRED: "the API key has expired",
    GatewayReject.IP_NOT_ALLOWED: "the API key may not be used from this address",
    GatewayReject.TIMESTAMP_OUTSIDE_WINDOW: "the request timestamp is outside the allowed window",
    GatewayReject.BAD_SIGNATURE: "the signature does not match the request",
    GatewayReject.REPLAYED_SIGNATURE: "this signed request was already received",
    GatewayReject.MISSING_SCOPE: "the API key lacks the scope this request needs",
}

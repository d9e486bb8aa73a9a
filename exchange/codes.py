"""One set of command kinds, event kinds and reject codes for every stage of the exchange.

The book (``matching.codes``) and risk (``risk.codes``) each number their own kinds and
codes in disjoint ranges so that both write the same rows. Clients, the journal tools and
the gateway should not have to know which stage refused a command, so the enums here are
the union of both parts, built from them (nothing is written twice) and checked at import
for name and value collisions.

Numbering of ``RejectCode`` (values are stable: they go on the wire):

- 0-31: the order book (``matching.codes.RejectCode``)
- 32-63: risk (``risk.codes.RiskReject``)
- 64-95: reserved for the gateway and session layer (auth, rate limits, throttles)
"""

from __future__ import annotations

from enum import IntEnum

from matching import codes as mc
from risk import codes as rc

GATEWAY_CODES = range(64, 96)
"""Reject codes kept free for the gateway/session layer; the cores never write them."""


def _union(name: str, *parts: type[IntEnum], doc: str) -> type[IntEnum]:
    """An IntEnum with every member of ``parts``; refuses a shared name or value."""
    members: dict[str, int] = {}
    for part in parts:
        for member in part:
            if member.name in members:
                raise ValueError(f"{name}: {member.name} is defined twice")
            if member.value in members.values():
                raise ValueError(f"{name}: value {member.value} is used twice")
            members[member.name] = member.value
    union = IntEnum(name, list(members.items()), module=__name__, qualname=name)
    union.__doc__ = doc
    return union


RejectCode = _union(
    "RejectCode",
    mc.RejectCode,
    rc.RiskReject,
    doc="Why a command changed nothing, whichever stage refused it.",
)
EventKind = _union(
    "EventKind",
    mc.EventKind,
    rc.RiskEventKind,
    doc="Kind of an event row (column E_KIND).",
)
CommandKind = _union(
    "CommandKind",
    mc.CommandKind,
    rc.RiskCommandKind,
    doc="Kind of a command row (column C_KIND).",
)

if any(code.value in GATEWAY_CODES for code in RejectCode):
    raise ValueError("the cores' reject codes must stay out of the gateway range 64-95")

REJECT_REASONS: dict[RejectCode, str] = {
    RejectCode(code): text
    for table in (mc.REJECT_REASONS, rc.RISK_REJECT_REASONS)
    for code, text in table.items()
}


def reason(code: int) -> str:
    """Text for a reject code; never raises, since it labels whatever arrives on the wire."""
    try:
        return REJECT_REASONS[RejectCode(code)]
    except (ValueError, KeyError):
        return f"unknown reject code {code}"

"""Fills to vault transfers, netted per (from vault, to vault, asset).

The money of one trade moves as ``risk.reference`` books it: the buyer pays
``notional + buyer fee``; the instrument's escrow receives ``notional - seller fee``; the
fee account receives both fees (a maker's fee is negative: a rebate). On chain that is,
per trade, ``buyer -> escrow: notional - seller fee`` and ``buyer -> fee: buyer fee +
seller fee``; a negative amount flows the other way (a rebate out of the fee vault).
Summed per buyer, a batch of N fills becomes at most two transfers per buyer plus none
for sellers: their proceeds stay in escrow until delivery.

Vectorised over event rows (numpy), because a settlement batch holds tens of thousands of
fills. All instruments are quoted in USDC (asset 0), which is therefore the asset moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exchange.codes import EventKind
from matching import codes as mc
from matching.codes import Side

QUOTE_ASSET = 0


@dataclass(frozen=True, slots=True)
class VaultRef:
    """A vault by role: ``kind`` is account, escrow or fee; ``account`` only for account."""

    kind: str
    account: int | None
    asset: int

    @staticmethod
    def of_account(account: int, asset: int = QUOTE_ASSET) -> VaultRef:
        return VaultRef("account", int(account), asset)

    @staticmethod
    def escrow(asset: int = QUOTE_ASSET) -> VaultRef:
        return VaultRef("escrow", None, asset)

    @staticmethod
    def fee(asset: int = QUOTE_ASSET) -> VaultRef:
        return VaultRef("fee", None, asset)


@dataclass(frozen=True, slots=True)
class Transfer:
    source: VaultRef
    dest: VaultRef
    amount: int  # base units, > 0


@dataclass(frozen=True, slots=True)
class Netted:
    transfers: list[Transfer]
    fills: int  # ORDER_FILLED rows (two per trade)
    trades: int


def fill_rows(events: np.ndarray) -> np.ndarray:
    return events[events[:, mc.E_KIND] == EventKind.ORDER_FILLED]


def _sum_by(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique keys and the sum of ``values`` per key (exact: Python ints if int64 could
    overflow)."""
    if len(keys) == 0:
        return keys, values
    uniq, inverse = np.unique(keys, return_inverse=True)
    exact = len(values) * int(np.abs(values).max()) >= 1 << 62
    sums = np.zeros(len(uniq), dtype=object if exact else np.int64)
    np.add.at(sums, inverse, values.astype(object) if exact else values)
    return uniq, sums


def net_fills(events: np.ndarray) -> Netted:
    """The netted transfers that settle every fill in ``events`` (other rows ignored)."""
    fills = fill_rows(np.asarray(events, dtype=np.int64).reshape(-1, mc.N_EVENT_FIELDS))
    buys = fills[fills[:, mc.E_SIDE] == Side.BUY]
    sells = fills[fills[:, mc.E_SIDE] == Side.SELL]
    # Per buyer: what its buys cost and charged it, and the fees of the sellers it met.
    notional = buys[:, mc.E_PRICE] * buys[:, mc.E_QTY]
    accounts = np.concatenate([buys[:, mc.E_ACCOUNT], sells[:, mc.E_CONTRA_ACCOUNT]])
    to_escrow = np.concatenate([notional, -sells[:, mc.E_REASON]])
    to_fee = np.concatenate([buys[:, mc.E_REASON], sells[:, mc.E_REASON]])
    buyers, escrow_sums = _sum_by(accounts, to_escrow)
    _, fee_sums = _sum_by(accounts, to_fee)
    escrow, fee = VaultRef.escrow(), VaultRef.fee()
    out: list[Transfer] = []
    rebates: list[Transfer] = []
    for account, e, f in zip(buyers.tolist(), escrow_sums.tolist(), fee_sums.tolist(), strict=True):
        vault = VaultRef.of_account(account)
        if e > 0:
            out.append(Transfer(vault, escrow, e))
        elif e < 0:
            rebates.append(Transfer(escrow, vault, -e))
        if f > 0:
            out.append(Transfer(vault, fee, f))
        elif f < 0:
            rebates.append(Transfer(fee, vault, -f))
    # Transfers out of the exchange's own vaults go last, after what funds them.
    return Netted(out + rebates, len(fills), len(buys))


def flows(transfers: list[Transfer]) -> dict[VaultRef, int]:
    """Net change per vault (a check: the sum over vaults is zero)."""
    out: dict[VaultRef, int] = {}
    for t in transfers:
        out[t.source] = out.get(t.source, 0) - t.amount
        out[t.dest] = out.get(t.dest, 0) + t.amount
    return out

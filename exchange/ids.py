"""Typed ids: the integers that name accounts, orders, instruments, trades and assets.

At run time each is a plain ``int`` (rows stay int64, nothing is boxed); to a type checker
they are distinct, so passing an order id where an account id belongs is caught before it
runs. Commands and events take them by keyword only, so a swap cannot run silently either.
"""

from __future__ import annotations

from typing import NewType

AccountId = NewType("AccountId", int)
OrderId = NewType("OrderId", int)
InstrumentId = NewType("InstrumentId", int)
TradeId = NewType("TradeId", int)
AssetId = NewType("AssetId", int)  # a collateral asset; 0 is the quote asset (USDC)

ALL_INSTRUMENTS = InstrumentId(-1)
"""``MassCancel``/``MassCancelDone``: every instrument."""

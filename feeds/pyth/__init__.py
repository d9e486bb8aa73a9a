"""Pyth oracle prices for CX: sources (Hermes, on-chain accounts, the simulated default),
Pyth's best-practice guards, and the feeder that turns accepted quotes into the engine's
``SetOraclePrice`` commands.

    # settings (the pyth section) decide the source; node.url is the Solana runtime's
    await run_oracle(engine.submit, risk=engine.config.risk, rpc_url=node.url)
"""

from feeds.pyth.accounts import (
    AccountDecodeError,
    LegacyPrice,
    PriceUpdate,
    decode_legacy_price,
    decode_price_update_v2,
)
from feeds.pyth.catalog import FEEDS, RECEIVER_PROGRAM_ID, Feed
from feeds.pyth.config import PythSettings, SourceSpec, open_source, parse_source
from feeds.pyth.feeder import Decision, OracleFeeder, Outcome
from feeds.pyth.guards import GuardLimits, OracleGuard, Refusal
from feeds.pyth.hermes import HermesSource
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.onchain import OnchainSource, PriceAccountRef
from feeds.pyth.quote import OracleQuote, OracleSource, PriceStatus
from feeds.pyth.service import run_oracle
from feeds.pyth.simulated import SimulatedPublisher, SimulatedSource, simulated_address

__all__ = [
    "FEEDS",
    "RECEIVER_PROGRAM_ID",
    "AccountDecodeError",
    "Decision",
    "Feed",
    "GuardLimits",
    "HermesSource",
    "LegacyPrice",
    "OnchainSource",
    "OracleFeeder",
    "OracleGuard",
    "OracleMetrics",
    "OracleQuote",
    "OracleSource",
    "Outcome",
    "PriceAccountRef",
    "PriceStatus",
    "PriceUpdate",
    "PythSettings",
    "Refusal",
    "SimulatedPublisher",
    "SimulatedSource",
    "SourceSpec",
    "decode_legacy_price",
    "decode_price_update_v2",
    "open_source",
    "parse_source",
    "run_oracle",
    "simulated_address",
]

"""The oracle as one long-running task: the configured source feeding one engine.

What ``cx serve`` runs beside the engine: open the source ``settings.source`` names, offer
every quote it yields to an ``OracleFeeder``, and close the source when cancelled.
"""

from __future__ import annotations

from feeds.pyth.config import PythSettings, open_source
from feeds.pyth.feeder import OracleFeeder, Submit
from feeds.pyth.metrics import OracleMetrics
from risk.config import RiskConfig


async def run_oracle(
    submit: Submit,
    *,
    risk: RiskConfig,
    settings: PythSettings | None = None,
    rpc_url: str | None = None,
    metrics: OracleMetrics | None = None,
    feeder: OracleFeeder | None = None,
) -> None:
    """Feed ``submit`` (the engine's) from the configured source until cancelled.

    ``rpc_url`` is the Solana cluster's URL (configured or the embedded runtime's);
    pass ``feeder`` to read its ``latest`` quotes (for display) while this runs.
    """
    source = open_source(settings, rpc_url=rpc_url, metrics=metrics)
    feeder = feeder or OracleFeeder(submit, risk=risk, metrics=metrics)
    try:
        await feeder.run(source.updates())
    finally:
        await source.aclose()

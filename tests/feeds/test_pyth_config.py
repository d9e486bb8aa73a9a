"""CX_PYTH_SOURCE picks the source; a bad value is refused with a clear message."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from feeds.pyth.config import PythSettings, open_source, parse_source
from feeds.pyth.hermes import HermesSource
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.onchain import OnchainSource
from feeds.pyth.simulated import SimulatedSource, simulated_address

SOL_ACCOUNT = "7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE"


@pytest.mark.parametrize("value", [None, "", "simulated", "  simulated "])
def test_default_is_simulated(value: str | None) -> None:
    assert parse_source(value).kind == "simulated"


def test_hermes_url_keeps_its_colons() -> None:
    spec = parse_source("hermes:http://127.0.0.1:9000/hermes")
    assert (spec.kind, spec.hermes_url) == ("hermes", "http://127.0.0.1:9000/hermes")


def test_onchain_accounts() -> None:
    spec = parse_source(f"onchain:SOL={SOL_ACCOUNT}, USDC={simulated_address('USDC')}")
    assert spec.kind == "onchain"
    assert spec.accounts == {"SOL": SOL_ACCOUNT, "USDC": str(simulated_address("USDC"))}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("hermes:", "http(s) URL"),
        ("hermes:ftp://x", "http(s) URL"),
        ("onchain", "needs accounts"),
        ("onchain:SOL", "<ASSET>=<address>"),
        (f"onchain:BTC={SOL_ACCOUNT}", "<ASSET>=<address>"),
        ("onchain:SOL=not-a-key", "SOL address"),
        ("pyth", "expected 'simulated'"),
    ],
)
def test_bad_values(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="CX_PYTH_SOURCE") as err:
        parse_source(value)
    assert message in str(err.value)


async def test_open_source_builds_the_configured_kind() -> None:
    metrics = OracleMetrics(CollectorRegistry())
    hermes_settings = PythSettings(source="hermes:http://127.0.0.1:1", api_key="secret")
    hermes = open_source(hermes_settings, metrics=metrics)
    assert isinstance(hermes, HermesSource) and not hermes.simulated

    onchain_settings = PythSettings(source=f"onchain:SOL={SOL_ACCOUNT}")
    onchain = open_source(onchain_settings, rpc_url="http://127.0.0.1:2", metrics=metrics)
    assert isinstance(onchain, OnchainSource) and not onchain.simulated
    assert [str(a.address) for a in onchain.accounts] == [SOL_ACCOUNT]

    with pytest.raises(ValueError, match="CX_SOLANA_RPC_URL"):
        open_source(metrics=metrics)
    with pytest.raises(ValueError, match="CX_PYTH_SOURCE"):  # refused when configured
        PythSettings(source="pyth")
    sim = open_source(PythSettings(interval_ms=100), rpc_url="http://127.0.0.1:3")
    assert isinstance(sim, SimulatedSource) and sim.simulated
    assert sim.reader.interval_s == 0.1
    for source in (hermes, onchain, sim):
        await source.aclose()

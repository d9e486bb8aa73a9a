"""Choosing the oracle source from configuration (``CX_PYTH_SOURCE``).

``CX_PYTH_SOURCE`` is one of:
- ``simulated`` (the default, also when unset): the SIMULATED publisher on the local Solana
  runtime, read back through the on-chain path;
- ``hermes:<url>``: a Hermes instance, e.g. ``hermes:http://127.0.0.1:9000``; the API key,
  if any, comes from ``CX_PYTH_API_KEY``;
- ``onchain:<ASSET>=<address>[,<ASSET>=<address>...]``: Pyth price accounts (PriceUpdateV2 or
  legacy) on the cluster at ``CX_SOLANA_RPC_URL``.
The simulated and on-chain sources need a Solana RPC URL: ``CX_SOLANA_RPC_URL``, or the URL of
the embedded runtime passed in by whoever started it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from solders.pubkey import Pubkey

from feeds.pyth.catalog import FEEDS
from feeds.pyth.hermes import HermesSource
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.onchain import OnchainSource, PriceAccountRef
from feeds.pyth.quote import OracleSource
from feeds.pyth.simulated import SimulatedSource


class PythSettings(BaseSettings):
    """The oracle's settings from the environment (``CX_`` prefix)."""

    model_config = SettingsConfigDict(env_prefix="CX_", extra="ignore", frozen=True)

    pyth_source: str = "simulated"
    pyth_api_key: SecretStr | None = None
    pyth_seed: int = 7  # the simulated random walk's seed
    pyth_interval_ms: int = Field(default=400, gt=0)  # simulated publishing and on-chain polling
    solana_rpc_url: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: Literal["simulated", "hermes", "onchain"]
    hermes_url: str = ""
    accounts: dict[str, str] = field(default_factory=dict)  # asset -> base58 address


def parse_source(text: str | None) -> SourceSpec:
    """Parse a ``CX_PYTH_SOURCE`` value; ``ValueError`` says what is wrong with it."""
    value = (text or "").strip()
    if value in ("", "simulated"):
        return SourceSpec("simulated")
    kind, sep, rest = value.partition(":")
    if kind == "hermes" and sep:
        if not rest.startswith(("http://", "https://")):
            raise ValueError(f"CX_PYTH_SOURCE: hermes needs an http(s) URL, got {rest!r}")
        return SourceSpec("hermes", hermes_url=rest)
    if kind == "onchain":
        accounts: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            asset, eq, address = item.partition("=")
            if not eq or asset not in FEEDS:
                raise ValueError(
                    f"CX_PYTH_SOURCE: expected <ASSET>=<address> with ASSET in {sorted(FEEDS)}, "
                    f"got {item!r}"
                )
            try:
                Pubkey.from_string(address)
            except ValueError as exc:
                raise ValueError(f"CX_PYTH_SOURCE: {asset} address {address!r}: {exc}") from exc
            accounts[asset] = address
        if not accounts:
            raise ValueError("CX_PYTH_SOURCE: onchain needs accounts, e.g. onchain:SOL=<address>")
        return SourceSpec("onchain", accounts=accounts)
    raise ValueError(
        f"CX_PYTH_SOURCE: expected 'simulated', 'hermes:<url>' or "
        f"'onchain:<ASSET>=<address>,...', got {value!r}"
    )


def open_source(
    settings: PythSettings | None = None,
    *,
    rpc_url: str | None = None,
    metrics: OracleMetrics | None = None,
) -> OracleSource:
    """The configured source. ``rpc_url`` (the embedded runtime's) is used when
    ``CX_SOLANA_RPC_URL`` is not set."""
    settings = settings or PythSettings()
    spec = parse_source(settings.pyth_source)
    interval = settings.pyth_interval_ms / 1000
    if spec.kind == "hermes":
        key = settings.pyth_api_key.get_secret_value() if settings.pyth_api_key else None
        return HermesSource(spec.hermes_url, api_key=key, metrics=metrics)
    url = settings.solana_rpc_url or rpc_url
    if not url:
        raise ValueError(f"the {spec.kind} oracle source needs CX_SOLANA_RPC_URL or a runtime URL")
    if spec.kind == "onchain":
        refs = [PriceAccountRef(a, Pubkey.from_string(s)) for a, s in spec.accounts.items()]
        return OnchainSource(url, refs, interval_s=interval, metrics=metrics)
    return SimulatedSource(url, seed=settings.pyth_seed, interval_s=interval, metrics=metrics)

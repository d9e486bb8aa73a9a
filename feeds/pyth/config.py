"""The oracle's configuration (the ``pyth`` section) and choosing its source.

``source`` (documented variable ``CX_PYTH_SOURCE``) is one of:
- ``simulated`` (the default): the SIMULATED publisher on the local Solana runtime, read
  back through the on-chain path;
- ``hermes:<url>``: a Hermes instance, e.g. ``hermes:http://127.0.0.1:9000``; the API key,
  if any, is ``api_key`` (``CX_PYTH_API_KEY``);
- ``onchain:<ASSET>=<address>[,<ASSET>=<address>...]``: Pyth price accounts (PriceUpdateV2 or
  legacy) on the configured Solana cluster.
The simulated and on-chain sources read the Solana RPC URL they are given: the configured
cluster's (``CX_SOLANA_RPC_URL``) or the embedded runtime's, whichever the exchange uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from solders.pubkey import Pubkey

from feeds.pyth.catalog import FEEDS
from feeds.pyth.hermes import HermesSource
from feeds.pyth.metrics import OracleMetrics
from feeds.pyth.onchain import OnchainSource, PriceAccountRef
from feeds.pyth.quote import OracleSource
from feeds.pyth.simulated import SimulatedSource


class PythSettings(BaseModel):
    """The ``pyth`` section: a bad ``source`` is refused when the configuration is built."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = "simulated"
    api_key: SecretStr | None = None
    seed: int = 7  # the simulated random walk's seed
    interval_ms: int = Field(default=400, gt=0)  # simulated publishing and on-chain polling

    @field_validator("source")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_source(value)
        return value


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
    """The configured source; ``rpc_url`` is the Solana cluster the exchange uses (configured
    or embedded), which the simulated and on-chain sources read."""
    settings = settings or PythSettings()
    spec = parse_source(settings.source)
    interval = settings.interval_ms / 1000
    if spec.kind == "hermes":
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return HermesSource(spec.hermes_url, api_key=key, metrics=metrics)
    url = rpc_url
    if not url:
        raise ValueError(
            f"the {spec.kind} oracle source needs a Solana RPC URL (CX_SOLANA_RPC_URL)"
        )
    if spec.kind == "onchain":
        refs = [PriceAccountRef(a, Pubkey.from_string(s)) for a, s in spec.accounts.items()]
        return OnchainSource(url, refs, interval_s=interval, metrics=metrics)
    return SimulatedSource(url, seed=settings.seed, interval_s=interval, metrics=metrics)

"""The ``gateway`` section of the configuration, and what the exchange service is given.

The whole configuration is built once by the ``cx`` command (``cx.settings``), which
``gateway`` does not import: ``ServiceSettings`` names the sections the service reads, and
the built settings tree is one. Documented variables: ``CX_HOST``, ``CX_PORT``,
``CX_REDIS_PREFIX``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from exchange.settings import EngineSettings
from feeds.pyth.config import PythSettings
from feeds.redis_conn import RedisConfig
from risk.config import RiskConfig
from settlement.chain.config import ChainConfig
from settlement.db import DatabaseConfig


class GatewaySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    redis_prefix: str = Field(default="cx:md", min_length=1)  # market-data keys in Redis


class ServiceSettings(Protocol):
    """The sections ``ExchangeService`` runs on (``cx.settings.Settings`` has them all)."""

    @property
    def database(self) -> DatabaseConfig: ...

    @property
    def redis(self) -> RedisConfig: ...

    @property
    def solana(self) -> ChainConfig: ...

    @property
    def pyth(self) -> PythSettings: ...

    @property
    def engine(self) -> EngineSettings: ...

    @property
    def risk(self) -> RiskConfig: ...

    @property
    def gateway(self) -> GatewaySettings: ...

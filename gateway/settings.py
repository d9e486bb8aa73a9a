"""The ``gateway`` section of the configuration, and what the exchange service is given.

The whole configuration is built once by the ``cx`` command (``cx.settings``), which
``gateway`` does not import: ``ServiceSettings`` names the sections the service reads, and
the built settings tree is one. Documented variables: ``CX_HOST``, ``CX_PORT``,
``CX_REDIS_PREFIX``, ``CX_KEY_ENCRYPTION_KEY``, ``CX_SIGNATURE_WINDOW_MS``.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

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
    # Seals API keys' HMAC secrets (AES-256-GCM): base64 of 32 bytes. None: HMAC keys are
    # refused (creation says how to set one); Ed25519 keys need no master key.
    key_encryption_key: SecretStr | None = None
    signature_window_ms: int = Field(default=5_000, gt=0)  # signed-request timestamp window

    @field_validator("key_encryption_key")
    @classmethod
    def _is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from gateway.auth.secrets import parse_master_key

            parse_master_key(value.get_secret_value())
        return value

    def master_key(self) -> bytes | None:
        """The key-encryption key's bytes, if one is configured."""
        if self.key_encryption_key is None:
            return None
        from gateway.auth.secrets import parse_master_key

        return parse_master_key(self.key_encryption_key.get_secret_value())


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

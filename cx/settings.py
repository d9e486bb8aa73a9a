"""The one configuration: a frozen, strict settings tree, built once when ``cx`` starts.

Sources, strongest first: the subcommand's flags, the environment, a TOML config file
(``--config FILE`` or ``CX_CONFIG``), the defaults. Every field is settable in the
environment as ``CX_<SECTION>__<FIELD>`` (a whole section, or a complex field, as JSON);
the documented flat variables in ``FLAT_ENV`` (``CX_DATABASE_URL``, ...) keep working, and
where both name one field the ``CX_<SECTION>__<FIELD>`` form wins. Unknown fields (in the
file, under a ``CX_<SECTION>__`` variable) and unknown sections are refused.

Each section's type lives with the package that reads it, as a plain frozen model; the
packages are handed their section and nothing else reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from bots.demo_traffic import DemoSettings
from exchange.settings import EngineSettings
from feeds.pyth.config import PythSettings
from feeds.redis_conn import RedisConfig
from gateway.settings import GatewaySettings
from risk.config import RiskConfig
from settlement.chain.config import ChainConfig
from settlement.db import DatabaseConfig

PREFIX = "CX_"
DELIMITER = "__"
CONFIG_ENV = "CX_CONFIG"  # the config file, when no --config flag names one

# The documented flat variables -> (section, field).
FLAT_ENV: dict[str, tuple[str, str]] = {
    "CX_DATABASE_URL": ("database", "url"),
    "CX_REDIS_URL": ("redis", "url"),
    "CX_SOLANA_RPC_URL": ("solana", "rpc_url"),
    "CX_SETTLEMENT_AUTHORITY": ("solana", "settlement_authority"),
    "CX_SETTLEMENT_MINTS": ("solana", "settlement_mints"),
    "CX_LOCAL_ASSETS": ("solana", "local_assets"),
    "CX_COMMITMENT": ("solana", "commitment"),
    "CX_RPC_TIMEOUT_S": ("solana", "rpc_timeout_s"),
    "CX_RPC_RETRY_FOR_S": ("solana", "rpc_retry_for_s"),
    "CX_RESEND_INTERVAL_S": ("solana", "resend_interval_s"),
    "CX_POLL_INTERVAL_S": ("solana", "poll_interval_s"),
    "CX_DEPOSIT_POLL_S": ("solana", "deposit_poll_s"),
    "CX_BATCH_MAX_ROWS": ("solana", "batch_max_rows"),
    "CX_LOCAL_AIRDROP_LAMPORTS": ("solana", "local_airdrop_lamports"),
    "CX_PYTH_SOURCE": ("pyth", "source"),
    "CX_PYTH_API_KEY": ("pyth", "api_key"),
    "CX_PYTH_SEED": ("pyth", "seed"),
    "CX_PYTH_INTERVAL_MS": ("pyth", "interval_ms"),
    "CX_VAR_DIR": ("engine", "data_dir"),
    "CX_LISTING_SCHEDULE": ("engine", "listing_schedule"),
    "CX_REFERENCE_PRICE": ("engine", "reference_price"),
    "CX_CLOCK_TICK_S": ("engine", "clock_tick_s"),
    "CX_RECONCILE_EVERY_S": ("engine", "reconcile_every_s"),
    "CX_HOST": ("gateway", "host"),
    "CX_PORT": ("gateway", "port"),
    "CX_REDIS_PREFIX": ("gateway", "redis_prefix"),
    "CX_KEY_ENCRYPTION_KEY": ("gateway", "key_encryption_key"),
    "CX_SIGNATURE_WINDOW_MS": ("gateway", "signature_window_ms"),
    "CX_DEMO_TRAFFIC": ("demo", "traffic"),
}
# ``CX_RISK`` (the whole risk section as JSON) is the ``CX_<SECTION>`` form, documented too.


class ConfigError(ValueError):
    """The configuration cannot be built; the message names each offending field."""


class Settings(BaseSettings):
    """The whole configuration. Build it with ``load``, not the constructor."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    database: DatabaseConfig = DatabaseConfig()
    redis: RedisConfig = RedisConfig()
    solana: ChainConfig = ChainConfig()
    pyth: PythSettings = PythSettings()
    engine: EngineSettings = EngineSettings()
    risk: RiskConfig = RiskConfig()
    gateway: GatewaySettings = GatewaySettings()
    demo: DemoSettings = DemoSettings()


SECTIONS = tuple(Settings.model_fields)


class _Environment(EnvSettingsSource):
    """``CX_<SECTION>__<FIELD>`` (and the flat names, mapped onto that form) read from a
    given mapping, so that ``load`` reads the process environment exactly once."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._vars = _nested_names(environ)
        super().__init__(
            Settings, case_sensitive=False, env_prefix=PREFIX, env_nested_delimiter=DELIMITER
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._vars

    def decode_complex_value(self, field_name: str, field: Any, value: Any) -> Any:
        """JSON where it parses; otherwise the text itself, for the field's own validation
        to accept (a listing schedule's file name) or refuse with its own message."""
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


def _nested_names(environ: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for flat, (section, field) in FLAT_ENV.items():
        if flat in environ:
            out[f"{PREFIX}{section}{DELIMITER}{field}".lower()] = environ[flat]
    for name, value in environ.items():
        key = name.lower()
        if not key.startswith(PREFIX.lower()) or name in FLAT_ENV:
            continue
        section = key[len(PREFIX) :].split(DELIMITER, 1)[0]
        if section in SECTIONS:
            out[key] = value
        elif DELIMITER in key:
            raise ConfigError(f"{name}: no section {section!r} (sections: {', '.join(SECTIONS)})")
    return out


def load(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """The configuration from ``flags`` (nested like the tree: ``{"gateway": {"port": 1}}``;
    None values are left out), the environment (``os.environ`` unless given) and the config
    file (``config_file``, else ``CX_CONFIG``, else none)."""
    env = os.environ if environ is None else environ
    path = config_file or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    try:
        sources: list[PydanticBaseSettingsSource] = [
            InitSettingsSource(Settings, init_kwargs=_drop_none(dict(flags or {}))),
            _Environment(env),
        ]
        if path is not None:
            _check_file(path)
            sources.append(TomlConfigSettingsSource(Settings, toml_file=path))
        # pydantic-settings's documented hook for pre-built sources (not a field: mypy sees
        # only the fields in the constructor).
        return Settings(_build_sources=(tuple(sources), {}))  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    except SettingsError as exc:  # a variable that should be JSON and is not
        raise ConfigError(f"{exc}: {exc.__cause__}" if exc.__cause__ else str(exc)) from None


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def _drop_none(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f" (flags, CX_* variables{f', {path}' if path else ''})"
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{field}: unknown field")
        else:
            lines.append(f"{field}: {err['msg']}")
    return "; ".join(lines) + where


# -- showing it ------------------------------------------------------------------------------


def effective(settings: Settings) -> dict[str, Any]:
    """The tree as plain data, secrets shown as ``**********``."""
    return settings.model_dump(mode="json")


def to_json(settings: Settings) -> str:
    return json.dumps(effective(settings), indent=2)


def to_toml(settings: Settings) -> str:
    """The tree as a TOML config file would give it (unset optional fields left out)."""
    lines: list[str] = []
    for name, section in effective(settings).items():
        _toml_table(lines, name, section)
    return "\n".join(lines) + "\n"


def _toml_table(lines: list[str], name: str, table: dict[str, Any]) -> None:
    if lines:
        lines.append("")
    lines.append(f"[{name}]")
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            subtables.append((key, value))
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in subtables:
        _toml_table(lines, f"{name}.{_toml_key(key)}", value)


def _toml_key(key: Any) -> str:
    text = str(key)
    return text if text.replace("_", "").replace("-", "").isalnum() else json.dumps(text)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML form for {value!r}")

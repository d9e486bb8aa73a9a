"""The one configuration: every documented variable takes effect, flags beat the environment
beat the config file beat the defaults, unknown fields are refused, secrets stay hidden,
and no package below ``cx`` reads the environment."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cx import cli
from cx.settings import FLAT_ENV, ConfigError, Settings, load, to_toml
from exchange.instruments import ListingSchedule
from gateway.exchange_service import ExchangeService

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("matching", "risk", "exchange", "settlement", "feeds", "gateway", "bots")
SOL_ACCOUNT = "7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE"
MINT = "So11111111111111111111111111111111111111112"


def _every_variable(tmp_path: Path) -> dict[str, tuple[str, tuple[str, ...], Any]]:
    """Each documented variable: the value set, where it lands in the tree, what it becomes."""
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('resources = ["L40S"]\nregions = ["ap-south"]\ndaily_days_ahead = 2\n')
    authority = tmp_path / "keys" / "authority.json"
    return {
        "CX_DATABASE_URL": ("postgresql://cx:pw@db.example:5433/cx", ("database", "url"), None),
        "CX_REDIS_URL": ("redis://:pw@cache.example:6390/2", ("redis", "url"), None),
        "CX_SOLANA_RPC_URL": ("http://rpc.example:8899", ("solana", "rpc_url"), None),
        "CX_SETTLEMENT_AUTHORITY": (str(authority), ("solana", "settlement_authority"), authority),
        "CX_SETTLEMENT_MINTS": (json.dumps({"0": MINT}), ("solana", "settlement_mints"), {0: MINT}),
        "CX_LOCAL_ASSETS": ("[0]", ("solana", "local_assets"), (0,)),
        "CX_COMMITMENT": ("finalized", ("solana", "commitment"), None),
        "CX_RPC_TIMEOUT_S": ("7.5", ("solana", "rpc_timeout_s"), 7.5),
        "CX_RPC_RETRY_FOR_S": ("90", ("solana", "rpc_retry_for_s"), 90.0),
        "CX_RESEND_INTERVAL_S": ("3", ("solana", "resend_interval_s"), 3.0),
        "CX_POLL_INTERVAL_S": ("0.25", ("solana", "poll_interval_s"), 0.25),
        "CX_DEPOSIT_POLL_S": ("1.5", ("solana", "deposit_poll_s"), 1.5),
        "CX_BATCH_MAX_ROWS": ("1024", ("solana", "batch_max_rows"), 1024),
        "CX_LOCAL_AIRDROP_LAMPORTS": (
            "5000000000",
            ("solana", "local_airdrop_lamports"),
            5 * 10**9,
        ),
        "CX_PYTH_SOURCE": (f"onchain:SOL={SOL_ACCOUNT}", ("pyth", "source"), None),
        "CX_PYTH_API_KEY": ("hermes-key", ("pyth", "api_key"), None),
        "CX_PYTH_SEED": ("11", ("pyth", "seed"), 11),
        "CX_PYTH_INTERVAL_MS": ("250", ("pyth", "interval_ms"), 250),
        "CX_VAR_DIR": (str(tmp_path / "data"), ("engine", "data_dir"), tmp_path / "data"),
        "CX_LISTING_SCHEDULE": (
            str(schedule),
            ("engine", "listing_schedule"),
            ListingSchedule(resources=("L40S",), regions=("ap-south",), daily_days_ahead=2),
        ),
        "CX_REFERENCE_PRICE": ("3000000", ("engine", "reference_price"), 3_000_000),
        "CX_CLOCK_TICK_S": ("0.5", ("engine", "clock_tick_s"), 0.5),
        "CX_RECONCILE_EVERY_S": ("5", ("engine", "reconcile_every_s"), 5.0),
        "CX_HOST": ("0.0.0.0", ("gateway", "host"), None),
        "CX_PORT": ("9100", ("gateway", "port"), 9100),
        "CX_REDIS_PREFIX": ("cx:test", ("gateway", "redis_prefix"), None),
        "CX_KEY_ENCRYPTION_KEY": ("A" * 43 + "=", ("gateway", "key_encryption_key"), None),
        "CX_SIGNATURE_WINDOW_MS": ("2500", ("gateway", "signature_window_ms"), 2500),
        "CX_DEMO_TRAFFIC": ("true", ("demo", "traffic"), True),
        "CX_RISK": ('{"taker_fee_bps": 25}', ("risk", "taker_fee_bps"), 25),
    }


def _at(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for part in path:
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_documented_variable_a_file_and_a_flag_take_effect(tmp_path: Path) -> None:
    variables = _every_variable(tmp_path)
    assert set(variables) == {*FLAT_ENV, "CX_RISK"}  # a new documented variable is tested here
    config = tmp_path / "cx.toml"
    config.write_text("[engine]\nsnapshots_kept = 5\n\n[demo]\ninterval_s = 0.5\n")
    environ = {name: value for name, (value, _, _) in variables.items()}
    environ["CX_CONFIG"] = str(config)

    settings = load({"demo": {"instruments": 2}}, environ=environ)

    for name, (value, path, expected) in variables.items():
        assert _at(settings, path) == (value if expected is None else expected), name
    assert settings.engine.snapshots_kept == 5 and settings.demo.interval_s == 0.5  # the file
    assert settings.demo.instruments == 2  # the flag

    # What the service is given: the configured authority reaches the chain settlement (it
    # used to be replaced by the data directory's), the URLs reach their resolvers.
    service = ExchangeService(settings)
    assert service.chain_config().settlement_authority == tmp_path / "keys" / "authority.json"
    assert service.chain_config().rpc_url == "http://rpc.example:8899"
    assert service.var == tmp_path / "data"
    assert service.settings.database.configured_url() == variables["CX_DATABASE_URL"][0]
    assert service.settings.redis.configured_url() == variables["CX_REDIS_URL"][0]
    engine_config = settings.engine.engine_config(settings.risk)
    assert engine_config.risk.taker_fee_bps == 25 and engine_config.snapshots_kept == 5


def test_defaults_and_the_authority_in_the_data_directory(tmp_path: Path) -> None:
    settings = load(environ={})
    assert settings == Settings()
    assert settings.database.url is None and settings.solana.rpc_url is None
    assert settings.pyth.source == "simulated" and settings.gateway.port == 8000
    service = ExchangeService(load({"engine": {"data_dir": tmp_path}}, environ={}))
    assert service.chain_config().settlement_authority == tmp_path / "settlement-authority.json"


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    config = tmp_path / "cx.toml"
    config.write_text("[gateway]\nport = 1001\nhost = 'file'\nredis_prefix = 'file'\n")
    environ = {"CX_PORT": "1002", "CX_HOST": "env"}
    settings = load({"gateway": {"port": 1003}}, environ=environ, config_file=config)
    assert settings.gateway.port == 1003  # flag
    assert settings.gateway.host == "env"  # environment over the file
    assert settings.gateway.redis_prefix == "file"  # file over the default
    assert settings.gateway.model_fields_set == {"port", "host", "redis_prefix"}
    assert load({"gateway": {"port": None}}, environ=environ).gateway.port == 1002  # unset flag

    # The nested form names the same field as the flat one and wins over it.
    both = {"CX_SOLANA_RPC_URL": "http://flat:1", "CX_SOLANA__RPC_URL": "http://nested:1"}
    assert load(environ=both).solana.rpc_url == "http://nested:1"
    # Any field, nested or whole sections as JSON.
    nested = {"CX_ENGINE__FSYNC": "strict", "CX_DEMO": '{"seed": 3}'}
    settings = load(environ=nested)
    assert settings.engine.fsync == "strict" and settings.demo.seed == 3
    # CX_CONFIG names the file when no flag does; a --config file beats it.
    other = tmp_path / "other.toml"
    other.write_text("[gateway]\nport = 2002\n")
    assert load(environ={"CX_CONFIG": str(config)}).gateway.port == 1001
    assert load(environ={"CX_CONFIG": str(config)}, config_file=other).gateway.port == 2002


def test_the_tree_is_frozen() -> None:
    settings = load(environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.gateway.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "file", "message"),
    [
        ({"CX_SOLANA__RPC_TIMEOUT": "1"}, None, "solana.rpc_timeout: unknown field"),
        ({"CX_GATEWAYS__PORT": "1"}, None, "CX_GATEWAYS__PORT: no section 'gateways'"),
        ({}, "[solana]\nrpc_timeout = 1\n", "solana.rpc_timeout: unknown field"),
        ({}, "[nope]\nx = 1\n", "nope: unknown field"),
        ({}, "[engine\n", "config file"),
        ({"CX_PORT": "eighty"}, None, "gateway.port: Input should be a valid integer"),
        ({"CX_PYTH_SOURCE": "pyth"}, None, "pyth.source"),
        ({"CX_COMMITMENT": "final"}, None, "solana.commitment"),
        ({"CX_LISTING_SCHEDULE": "/no/such/schedule.toml"}, None, "no listing schedule file"),
        ({"CX_RISK": '{"taker_fee_bps": 1, "maker_fee_bps": 5}'}, None, "maker fee"),
        ({"CX_CONFIG": "/no/such/cx.toml"}, None, "config file /no/such/cx.toml not found"),
    ],
)
def test_unknown_or_bad_fields_are_refused_with_a_clear_message(
    tmp_path: Path, environ: dict[str, str], file: str | None, message: str
) -> None:
    path = None
    if file is not None:
        path = tmp_path / "cx.toml"
        path.write_text(file)
    with pytest.raises(ConfigError) as err:
        load(environ=environ, config_file=path)
    assert message in str(err.value)


def test_cx_refuses_a_bad_configuration_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cx.toml"
    config.write_text("[gateway]\nprot = 1\n")
    assert cli.main(["--config", str(config), "config", "show"]) == 2
    err = capsys.readouterr().err
    assert "gateway.prot: unknown field" in err and str(config) in err


def test_config_show_prints_the_effective_configuration_with_secrets_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("CX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CX_DATABASE_URL", "postgresql://cx:db-secret@db.example/cx")
    monkeypatch.setenv("CX_REDIS_URL", "redis://:redis-secret@cache.example:6379/0")
    monkeypatch.setenv("CX_PYTH_API_KEY", "pyth-secret")
    monkeypatch.setenv("CX_PORT", "9200")
    config = tmp_path / "cx.toml"
    config.write_text("[engine]\nreference_price = 2500000\n")

    assert cli.main(["--config", str(config), "config", "show", "--json"]) == 0
    text = capsys.readouterr().out
    assert "secret" not in text
    shown = json.loads(text)
    assert shown["database"]["url"] == shown["redis"]["url"] == "**********"
    assert shown["pyth"]["api_key"] == "**********"
    assert shown["gateway"]["port"] == 9200 and shown["engine"]["reference_price"] == 2_500_000

    assert cli.main(["--config", str(config), "config", "show"]) == 0
    text = capsys.readouterr().out
    assert "secret" not in text
    as_toml = tomllib.loads(text)
    assert as_toml["database"]["url"] == "**********"
    assert as_toml["gateway"]["port"] == 9200


def test_the_toml_it_shows_reads_back_as_the_same_configuration(tmp_path: Path) -> None:
    settings = load(
        {"risk": {"price_band_bps": 500}, "engine": {"fsync": "strict"}},
        environ={"CX_SETTLEMENT_MINTS": json.dumps({"0": MINT}), "CX_RPC_RETRY_FOR_S": "5"},
    )
    path = tmp_path / "shown.toml"
    path.write_text(to_toml(settings))
    assert load(environ={}, config_file=path) == settings


# -- who reads the environment, who imports whom --------------------------------------------------


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_nothing_below_cx_reads_the_environment() -> None:
    """(Which package may import which: tests/test_package_dependencies.py.)"""
    offenders = []
    for package in PACKAGES:
        for path in _modules(package):
            text = path.read_text()
            if any(word in text for word in ("os.environ", "getenv", "BaseSettings")):
                offenders.append(f"{path.relative_to(ROOT)} reads the environment")
    assert offenders == []
    cx_readers = [
        p.relative_to(ROOT).as_posix()
        for p in _modules("cx")
        if "os.environ" in p.read_text() or "getenv" in p.read_text()
    ]
    assert cx_readers == ["cx/settings.py"]

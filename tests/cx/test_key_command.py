"""``cx key`` end to end through ``cx.cli.main`` against a test database."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cx.cli import main

MASTER_B64 = base64.b64encode(os.urandom(32)).decode()


def rows(url: str) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch("SELECT * FROM api_keys ORDER BY created_at, key_id")
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture
def cli(fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CX_DATABASE_URL", fresh_pg_url)
    monkeypatch.setenv("CX_KEY_ENCRYPTION_KEY", MASTER_B64)
    return fresh_pg_url


def test_create_list_rotate_disable(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    create = ["key", "create", "11", "--scopes", "read,trade", "--ed25519-public-key", str(pem)]
    assert main([*create, "--allow-ip", "10.0.0.0/8", "--expires", "2030-01-01T00:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("created ck_") and "ed25519  read,trade  active" in out
    assert "allow=10.0.0.0/8" in out and "expires=2030-01-01T00:00:00+00:00" in out

    assert main(["key", "create", "11", "--scopes", "withdraw", "--hmac"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith("created ck_") and lines[1].startswith("secret ")
    secret = lines[1].split()[1]
    hmac_id = lines[0].split()[1]
    assert "shown once" in captured.err
    stored = b"".join(v for r in rows(cli) for v in r.values() if isinstance(v, bytes))
    assert secret.encode() not in stored

    assert main(["key", "list", "11"]) == 0
    listing = capsys.readouterr().out
    assert len(listing.splitlines()) == 2 and secret not in listing

    assert main(["key", "rotate", hmac_id]) == 0
    rotated = capsys.readouterr().out.splitlines()
    assert f"rotated_from={hmac_id}" in rotated[0] and rotated[1].startswith("secret ")
    new_id = rotated[0].split()[1]

    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    assert main(["key", "rotate", new_id, "--ed25519-public-key", str(bad)]) == 2
    assert "Ed25519 public key" in capsys.readouterr().err
    assert len(rows(cli)) == 3  # the refused rotation wrote nothing, new_id is still active

    assert main(["key", "disable", new_id]) == 0
    assert capsys.readouterr().out.startswith(f"disabled {new_id}")
    states = {r["key_id"]: r["disabled_at"] is not None for r in rows(cli)}
    assert states[hmac_id] and states[new_id] and len(states) == 3

    assert main(["key", "disable", new_id]) == 2
    assert "already disabled" in capsys.readouterr().err


def test_bad_inputs_are_clear_and_change_nothing(
    cli: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_key = tmp_path / "bad.pub"
    bad_key.write_text("hello")
    cases = [
        (["--scopes", "read,root", "--hmac"], "unknown scope root"),
        (["--scopes", "read", "--ed25519-public-key", str(bad_key)], "Ed25519 public key"),
        (["--scopes", "read", "--ed25519-public-key", str(tmp_path / "none")], "cannot read"),
        (["--scopes", "read", "--hmac", "--allow-ip", "10.0.0.300/8"], "bad CIDR"),
        (["--scopes", "read", "--hmac", "--expires", "tomorrow"], "ISO 8601"),
    ]
    for flags, message in cases:
        assert main(["key", "create", "12", *flags]) == 2, flags
        assert message in capsys.readouterr().err, flags
    monkeypatch.delenv("CX_KEY_ENCRYPTION_KEY")
    assert main(["key", "create", "12", "--scopes", "read", "--hmac"]) == 2
    assert "CX_KEY_ENCRYPTION_KEY" in capsys.readouterr().err
    assert main(["key", "rotate", "ck_missing"]) == 2
    assert "unknown key ck_missing" in capsys.readouterr().err
    assert rows(cli) == []
    monkeypatch.setenv("CX_KEY_ENCRYPTION_KEY", "c2hvcnQ=")
    assert main(["key", "list", "12"]) == 2
    assert "32 bytes" in capsys.readouterr().err

"""The API key store against the real Postgres: round trips, sealed secrets, rotation."""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.auth.keys import KeyStore, KeyStoreError, Scope, parse_networks, parse_scopes
from gateway.auth.secrets import SecretBox, SecretUnavailable, parse_master_key
from sdk.signing import decode_secret

MASTER = os.urandom(32)


def public_key() -> bytes:
    return (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


@pytest.fixture
async def conn(fresh_pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(fresh_pg_url)
    try:
        yield c
    finally:
        await c.close()


async def test_ed25519_key_round_trip(conn: asyncpg.Connection) -> None:
    store = KeyStore(conn, SecretBox(None))  # Ed25519 needs no master key
    pub = public_key()
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    created = await store.create_ed25519(
        7,
        pub,
        (Scope.READ, Scope.TRADE),
        allow_ips=parse_networks(["10.0.0.0/8", "2001:db8::/32"]),
        expires_at=expires,
    )
    assert created.secret is None
    got = await store.get(created.key.key_id)
    assert got is not None and got == created.key
    assert got.kind == "ed25519" and got.public_key == pub and got.account_id == 7
    assert got.scopes == (Scope.READ, Scope.TRADE) and got.expires_at == expires
    assert got.allow_ips == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert await store.list(7) == [got] and await store.list(8) == []
    # base64 and PEM forms of the same key are accepted too
    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert (await store.create_ed25519(7, pem, (Scope.READ,))).key.public_key is not None
    b64 = base64.b64encode(pub)
    assert (await store.create_ed25519(7, b64, (Scope.READ,))).key.public_key == pub


async def test_hmac_secret_is_returned_once_and_stored_only_sealed(
    conn: asyncpg.Connection,
) -> None:
    store = KeyStore(conn, SecretBox(MASTER))
    created = await store.create_hmac(3, (Scope.READ,))
    assert created.secret is not None
    raw = decode_secret(created.secret)
    assert len(raw) == 32
    row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", created.key.key_id)
    assert row is not None
    stored = b"".join(v for v in row.values() if isinstance(v, bytes))
    assert raw not in stored and created.secret.encode() not in stored
    assert len(row["secret_nonce"]) == 12 and row["public_key"] is None
    listed = await store.list(3)
    assert [k.secret_ciphertext for k in listed] == [None]  # listings never carry it
    key = await store.get(created.key.key_id)
    assert key is not None and store.hmac_secret(key) == raw
    # another master key cannot open it, nor can the ciphertext move to another key id
    with pytest.raises(SecretUnavailable):
        KeyStore(conn, SecretBox(os.urandom(32))).hmac_secret(key)
    with pytest.raises(SecretUnavailable):
        SecretBox(MASTER).open("ck_other", key.secret_nonce or b"", key.secret_ciphertext or b"")


async def test_hmac_without_a_master_key_is_refused_with_the_way_to_set_one(
    conn: asyncpg.Connection,
) -> None:
    store = KeyStore(conn, SecretBox(None))
    with pytest.raises(SecretUnavailable, match="CX_KEY_ENCRYPTION_KEY"):
        await store.create_hmac(3, (Scope.READ,))
    assert await store.list(3) == []


async def test_disable_and_rotate(conn: asyncpg.Connection) -> None:
    store = KeyStore(conn, SecretBox(MASTER))
    first = (
        await store.create_hmac(
            5, (Scope.TRADE, Scope.READ), allow_ips=parse_networks(["192.168.1.0/24"])
        )
    ).key
    second = await store.rotate(first.key_id)
    assert second.secret is not None and second.key.kind == "hmac"
    assert second.key.rotated_from == first.key_id and second.key.account_id == 5
    assert second.key.scopes == first.scopes and second.key.allow_ips == first.allow_ips
    old = await store.get(first.key_id)
    assert old is not None and old.disabled_at is not None
    with pytest.raises(KeyStoreError, match="already disabled"):
        await store.rotate(first.key_id)
    pub = public_key()
    third = await store.rotate(second.key.key_id, kind="ed25519", public_key=pub)
    assert third.secret is None and third.key.public_key == pub
    disabled = await store.disable(third.key.key_id)
    assert disabled.disabled_at is not None
    with pytest.raises(KeyStoreError, match="already disabled"):
        await store.disable(third.key.key_id)
    with pytest.raises(KeyStoreError, match="unknown key"):
        await store.disable("ck_nope")
    assert [k.key_id for k in await store.list(5)] == [
        first.key_id,
        second.key.key_id,
        third.key.key_id,
    ]


def test_input_parsers_refuse_bad_values() -> None:
    assert parse_scopes(["trade", "read"]) == (Scope.READ, Scope.TRADE)
    with pytest.raises(KeyStoreError, match="unknown scope superuser"):
        parse_scopes(["read", "superuser"])
    with pytest.raises(KeyStoreError, match="at least one scope"):
        parse_scopes([""])
    with pytest.raises(KeyStoreError, match="bad CIDR"):
        parse_networks(["10.0.0.1/8"])
    with pytest.raises(ValueError, match="32 bytes"):
        parse_master_key(base64.b64encode(b"short").decode())


async def test_a_malformed_public_key_writes_nothing(conn: asyncpg.Connection) -> None:
    store = KeyStore(conn, SecretBox(None))
    with pytest.raises(KeyStoreError, match="Ed25519 public key"):
        await store.create_ed25519(9, b"not a key", (Scope.READ,))
    assert await store.list(9) == []
    expired = datetime.now(UTC) - timedelta(days=1)
    key = (await store.create_ed25519(9, public_key(), (Scope.READ,), expires_at=expired)).key
    assert key.expires_at == expired

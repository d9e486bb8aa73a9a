"""Signed-request verification against the real Postgres and Redis: every refusal, both
kinds accepted, replays refused, the scope check, and the SDK's shared vectors."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from servers import RUN_PREFIX

from exchange.codes import GATEWAY_REJECT_REASONS, GATEWAY_REJECTS, GatewayReject
from gateway.auth.keys import ApiKey, KeyStore, Scope, parse_networks
from gateway.auth.secrets import SecretBox
from gateway.auth.signing import RequestVerifier, Verification, require
from sdk.signing import Ed25519Signer, HmacSigner, decode_secret

MASTER = os.urandom(32)
NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
async def env(fresh_pg_url: str, redis_url: str) -> AsyncIterator[dict[str, Any]]:
    conn = await asyncpg.connect(fresh_pg_url)
    client = aioredis.Redis.from_url(redis_url)
    store = KeyStore(conn, SecretBox(MASTER))
    prefix = f"{RUN_PREFIX}:auth:{os.urandom(4).hex()}"
    try:
        yield {
            "conn": conn,
            "store": store,
            "verifier": RequestVerifier(store, client, window_ms=5_000, replay_prefix=prefix),
            "redis": client,
            "prefix": prefix,
        }
    finally:
        await client.aclose()
        await conn.close()


def ed25519() -> tuple[bytes, bytes]:
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return seed, public


async def send(
    verifier: RequestVerifier,
    signer: Ed25519Signer | HmacSigner,
    *,
    ts: int = NOW_MS,
    now: datetime = NOW,
    ip: str = "127.0.0.1",
    body: bytes = b'{"side":"buy"}',
    tamper: bytes | None = None,
) -> Verification:
    h = signer.headers("POST", "/api/v1/orders", "a=1", body, timestamp_ms=ts)
    return await verifier.verify(
        h["CX-Key"],
        h["CX-Timestamp"],
        "POST",
        "/api/v1/orders",
        "a=1",
        body if tamper is None else tamper,
        h["CX-Signature"],
        now=now,
        client_ip=ip,
    )


def refused(result: Verification, code: GatewayReject) -> bool:
    return (
        result.reject is code
        and result.key is None
        and result.reason.startswith(GATEWAY_REJECT_REASONS[code])
    )


def test_gateway_reject_codes_are_in_the_reserved_range_with_reasons() -> None:
    assert all(code in GATEWAY_REJECTS for code in GatewayReject)
    assert set(GATEWAY_REJECT_REASONS) == set(GatewayReject)


async def test_both_kinds_accepted_then_the_replay_refused(env: dict[str, Any]) -> None:
    store: KeyStore = env["store"]
    verifier: RequestVerifier = env["verifier"]
    prefix = env["prefix"]
    seed, public = ed25519()
    ed_key = (await store.create_ed25519(1, public, (Scope.TRADE,))).key
    hm = await store.create_hmac(1, (Scope.READ,))
    assert hm.secret is not None
    for signer, key in (
        (Ed25519Signer(ed_key.key_id, seed), ed_key),
        (HmacSigner(hm.key.key_id, hm.secret), hm.key),
    ):
        ok = await send(verifier, signer)
        assert ok.ok and ok.key is not None and ok.key.key_id == key.key_id
        assert refused(await send(verifier, signer), GatewayReject.REPLAYED_SIGNATURE)
        # remembered for twice the window: as long as the timestamp check would let it pass
        ttls = [await env["redis"].pttl(k) async for k in env["redis"].scan_iter(f"{prefix}:*")]
        assert ttls and all(0 < t <= 10_000 for t in ttls)
        # a new timestamp is a new signature: accepted
        assert (await send(verifier, signer, ts=NOW_MS + 1)).ok


async def test_every_refusal(env: dict[str, Any]) -> None:
    store: KeyStore = env["store"]
    verifier: RequestVerifier = env["verifier"]
    seed, public = ed25519()
    key = (
        await store.create_ed25519(
            2,
            public,
            (Scope.READ,),
            allow_ips=parse_networks(["10.1.0.0/16"]),
            expires_at=NOW + timedelta(hours=1),
        )
    ).key
    signer = Ed25519Signer(key.key_id, seed)
    ip = "10.1.2.3"

    assert refused(
        await send(verifier, Ed25519Signer("ck_unknown", seed), ip=ip), GatewayReject.UNKNOWN_KEY
    )
    assert refused(await send(verifier, signer, ip="10.2.0.1"), GatewayReject.IP_NOT_ALLOWED)
    assert refused(await send(verifier, signer, ip="nonsense"), GatewayReject.IP_NOT_ALLOWED)
    late = NOW + timedelta(hours=2)
    late_ms = int(late.timestamp() * 1000)
    assert refused(
        await send(verifier, signer, ip=ip, ts=late_ms, now=late), GatewayReject.KEY_EXPIRED
    )
    for ts in (NOW_MS - 5_001, NOW_MS + 5_001):
        assert refused(
            await send(verifier, signer, ip=ip, ts=ts), GatewayReject.TIMESTAMP_OUTSIDE_WINDOW
        )
    h = signer.headers("GET", "/p", timestamp_ms=NOW_MS)
    not_a_number = await verifier.verify(
        key.key_id, "12ab", "GET", "/p", "", b"", h["CX-Signature"], now=NOW, client_ip=ip
    )
    assert refused(not_a_number, GatewayReject.TIMESTAMP_OUTSIDE_WINDOW)
    assert refused(
        await send(verifier, signer, ip=ip, tamper=b'{"side":"sell"}'),
        GatewayReject.BAD_SIGNATURE,
    )
    other_seed, _ = ed25519()
    assert refused(
        await send(verifier, Ed25519Signer(key.key_id, other_seed), ip=ip),
        GatewayReject.BAD_SIGNATURE,
    )
    garbage = await verifier.verify(
        key.key_id, str(NOW_MS), "GET", "/p", "", b"", "***", now=NOW, client_ip=ip
    )
    assert refused(garbage, GatewayReject.BAD_SIGNATURE)
    # the edges of the window pass
    assert (await send(verifier, signer, ip=ip, ts=NOW_MS - 5_000)).ok
    assert (await send(verifier, signer, ip=ip, ts=NOW_MS + 5_000)).ok
    await store.disable(key.key_id)
    assert refused(await send(verifier, signer, ip=ip, ts=NOW_MS + 1), GatewayReject.KEY_DISABLED)


async def test_an_hmac_key_under_another_master_key_is_a_bad_signature(
    env: dict[str, Any], redis_url: str
) -> None:
    store: KeyStore = env["store"]
    hm = await store.create_hmac(4, (Scope.READ,))
    assert hm.secret is not None
    client = aioredis.Redis.from_url(redis_url)
    try:
        wrong = RequestVerifier(
            KeyStore(env["conn"], SecretBox(os.urandom(32))),
            client,
            replay_prefix=f"{RUN_PREFIX}:auth:wrong",
        )
        result = await send(wrong, HmacSigner(hm.key.key_id, hm.secret))
    finally:
        await client.aclose()
    assert refused(result, GatewayReject.BAD_SIGNATURE)


def test_scope_check() -> None:
    key = ApiKey(
        key_id="ck_x",
        account_id=1,
        kind="ed25519",
        scopes=(Scope.READ, Scope.ADMIN),
        allow_ips=(),
        expires_at=None,
        created_at=NOW,
        disabled_at=None,
        rotated_from=None,
        public_key=bytes(32),
    )
    assert require(key, Scope.READ).ok and require(key, Scope.ADMIN).key == key
    result = require(key, Scope.WITHDRAW)
    assert refused(result, GatewayReject.MISSING_SCOPE) and "withdraw" in result.reason


async def test_the_server_verifies_the_shared_vectors(env: dict[str, Any]) -> None:
    vectors = json.loads(files("sdk").joinpath("signing_vectors.json").read_text())
    conn: asyncpg.Connection = env["conn"]
    ed = vectors["keys"]["ed25519"]
    await conn.execute(
        "INSERT INTO api_keys (key_id, account_id, kind, scopes, public_key) "
        "VALUES ($1, 1, 'ed25519', $2, $3)",
        ed["key_id"],
        ["read"],
        bytes.fromhex(ed["public_key_hex"]),
    )
    hm = vectors["keys"]["hmac"]
    nonce, sealed = SecretBox(MASTER).seal(hm["key_id"], decode_secret(hm["secret"]))
    await conn.execute(
        "INSERT INTO api_keys (key_id, account_id, kind, scopes, secret_nonce, secret_ciphertext)"
        " VALUES ($1, 1, 'hmac', $2, $3, $4)",
        hm["key_id"],
        ["read"],
        nonce,
        sealed,
    )
    verifier: RequestVerifier = env["verifier"]
    assert len(vectors["cases"]) == 6
    for case in vectors["cases"]:
        h = case["headers"]
        now = datetime.fromtimestamp(case["timestamp_ms"] / 1000, UTC)
        result = await verifier.verify(
            h["CX-Key"],
            h["CX-Timestamp"],
            case["method"],
            case["path"],
            case["query"],
            case["body"].encode(),
            h["CX-Signature"],
            now=now,
            client_ip="127.0.0.1",
        )
        assert result.ok, (case["kind"], case["method"], result.reason)

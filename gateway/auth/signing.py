"""Signed requests, server side: who sent this request, and may it pass.

The canonical payload is the one ``sdk/signing.py`` signs (gateway/README.md "Signed
requests"); the shared vectors in ``sdk/signing_vectors.json`` hold both sides to it. Checks
run cheapest first and every refusal is a ``GatewayReject`` with its reason. A replay is
refused by remembering each accepted signature in Redis (``SET NX PX``) for twice the
window: a timestamp passes for ``window`` either side of now, so a signature stays usable
that long, and after that the timestamp check refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from redis.asyncio import Redis

from exchange.codes import GATEWAY_REJECT_REASONS, GatewayReject
from gateway.auth.keys import ApiKey, KeyStore, Scope
from gateway.auth.secrets import SecretUnavailable

DEFAULT_WINDOW_MS = 5_000


def canonical_payload(timestamp_ms: int, method: str, path: str, query: str, body: bytes) -> bytes:
    """The bytes a request's signature covers (the same as ``sdk.signing``)."""
    return f"{timestamp_ms}\n{method.upper()}\n{path}\n{query}\n".encode() + body


@dataclass(frozen=True)
class Verification:
    """The outcome: the key when accepted, else the reject code and a human reason."""

    key: ApiKey | None
    reject: GatewayReject | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.reject is None


def refuse(code: GatewayReject, detail: str = "") -> Verification:
    reason = GATEWAY_REJECT_REASONS[code] + (f": {detail}" if detail else "")
    return Verification(None, code, reason)


def require(key: ApiKey, scope: Scope) -> Verification:
    """Accepted if ``key`` carries ``scope`` (``admin`` does not imply the others)."""
    if scope in key.scopes:
        return Verification(key)
    return refuse(GatewayReject.MISSING_SCOPE, f"needs {scope.value}")


class RequestVerifier:
    """Verifies signed requests against the key store, with replay memory in Redis."""

    def __init__(
        self,
        store: KeyStore,
        redis: Redis,
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        replay_prefix: str = "cx:auth:sig",
    ) -> None:
        self._store = store
        self._redis = redis
        self._window_ms = window_ms
        self._prefix = replay_prefix

    async def verify(
        self,
        key_id: str,
        timestamp: str,
        method: str,
        path: str,
        query: str,
        body: bytes,
        signature: str,
        *,
        now: datetime,
        client_ip: str,
    ) -> Verification:
        key = await self._store.get(key_id)
        if key is None:
            return refuse(GatewayReject.UNKNOWN_KEY)
        if key.disabled_at is not None:
            return refuse(GatewayReject.KEY_DISABLED)
        if key.expires_at is not None and key.expires_at <= now:
            return refuse(GatewayReject.KEY_EXPIRED)
        if key.allow_ips:
            try:
                ip = ipaddress.ip_address(client_ip)
            except ValueError:
                return refuse(GatewayReject.IP_NOT_ALLOWED, f"unreadable address {client_ip!r}")
            if not any(ip in net for net in key.allow_ips):
                return refuse(GatewayReject.IP_NOT_ALLOWED, client_ip)
        if not timestamp.isdecimal() or len(timestamp) > 16:
            return refuse(GatewayReject.TIMESTAMP_OUTSIDE_WINDOW, "not milliseconds since epoch")
        ts = int(timestamp)
        now_ms = int(now.astimezone(UTC).timestamp() * 1000)
        if abs(now_ms - ts) > self._window_ms:
            return refuse(
                GatewayReject.TIMESTAMP_OUTSIDE_WINDOW, f"{now_ms - ts} ms from server time"
            )
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return refuse(GatewayReject.BAD_SIGNATURE, "not base64")
        payload = canonical_payload(ts, method, path, query, body)
        if not self._signature_matches(key, payload, sig):
            return refuse(GatewayReject.BAD_SIGNATURE)
        digest = hashlib.sha256(sig).hexdigest()
        first = await self._redis.set(
            f"{self._prefix}:{digest}", key.key_id, nx=True, px=2 * self._window_ms
        )
        if not first:
            return refuse(GatewayReject.REPLAYED_SIGNATURE)
        return Verification(key)

    def _signature_matches(self, key: ApiKey, payload: bytes, sig: bytes) -> bool:
        if key.kind == "ed25519":
            assert key.public_key is not None
            try:
                Ed25519PublicKey.from_public_bytes(key.public_key).verify(sig, payload)
            except InvalidSignature:
                return False
            return True
        try:
            secret = self._store.hmac_secret(key)
        except SecretUnavailable:
            return False  # wrong or missing master key: the secret cannot be checked
        expected = hmac.new(secret, payload, hashlib.sha256).digest()
        return hmac.compare_digest(expected, sig)

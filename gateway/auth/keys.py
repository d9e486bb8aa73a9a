"""The API key store (table ``api_keys``, migration 0003) over asyncpg.

An Ed25519 key keeps only its public key; an HMAC key's secret is generated here, returned
once to the caller and stored only sealed (``gateway.auth.secrets``). Listing never returns
secrets. Rotation creates a new key with the same account, scopes and allow-list and disables
the old one, in one transaction.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import asyncpg

from gateway.auth.secrets import SecretBox

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
KeyKind = Literal["ed25519", "hmac"]


class Scope(StrEnum):
    READ = "read"
    TRADE = "trade"
    WITHDRAW = "withdraw"
    ADMIN = "admin"


class KeyStoreError(ValueError):
    """A key request the store refuses (bad input, unknown or already disabled key)."""


def parse_scopes(values: Iterable[str]) -> tuple[Scope, ...]:
    """Scope names -> scopes, in a fixed order; refuses an unknown or empty set."""
    names = [v.strip() for v in values if v.strip()]
    if not names:
        raise KeyStoreError("a key needs at least one scope (read, trade, withdraw, admin)")
    unknown = sorted(set(names) - {s.value for s in Scope})
    if unknown:
        raise KeyStoreError(f"unknown scope {', '.join(unknown)}: use read, trade, withdraw, admin")
    return tuple(s for s in Scope if s.value in names)


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """CIDR strings -> networks; refuses a malformed one (host bits set included)."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip()))
        except ValueError as exc:
            raise KeyStoreError(f"bad CIDR {v!r}: {exc}") from None
    return tuple(out)


def parse_public_key(raw: bytes) -> bytes:
    """An Ed25519 public key as 32 raw bytes, base64 of them, or a PEM SubjectPublicKeyInfo."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = raw.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text)
        except ValueError as exc:
            raise KeyStoreError(f"not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyStoreError("the PEM public key is not an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(raw) == 32:
        return raw
    try:
        decoded = base64.b64decode(text, validate=True)
    except ValueError:
        decoded = b""
    if len(decoded) != 32:
        raise KeyStoreError(
            "an Ed25519 public key is 32 raw bytes, their base64, or a PEM public key"
        )
    return decoded


@dataclass(frozen=True)
class ApiKey:
    """One key as verification and listings see it: never a secret."""

    key_id: str
    account_id: int
    kind: KeyKind
    scopes: tuple[Scope, ...]
    allow_ips: tuple[IpNetwork, ...]
    expires_at: datetime | None
    created_at: datetime
    disabled_at: datetime | None
    rotated_from: str | None
    public_key: bytes | None  # Ed25519 only
    secret_nonce: bytes | None = None  # HMAC only, sealed
    secret_ciphertext: bytes | None = None


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str | None  # the HMAC secret, shown once (unpadded base64url); None for Ed25519


_COLUMNS = (
    "key_id, account_id, kind, scopes, allow_ips, expires_at, created_at, disabled_at, "
    "rotated_from, public_key, secret_nonce, secret_ciphertext"
)


def _row(r: Any, *, with_secret: bool) -> ApiKey:
    return ApiKey(
        key_id=r["key_id"],
        account_id=r["account_id"],
        kind=r["kind"],
        scopes=tuple(Scope(s) for s in r["scopes"]),
        allow_ips=tuple(r["allow_ips"] or ()),
        expires_at=r["expires_at"],
        created_at=r["created_at"],
        disabled_at=r["disabled_at"],
        rotated_from=r["rotated_from"],
        public_key=r["public_key"],
        secret_nonce=r["secret_nonce"] if with_secret else None,
        secret_ciphertext=r["secret_ciphertext"] if with_secret else None,
    )


def new_key_id() -> str:
    return "ck_" + secrets.token_hex(12)


class KeyStore:
    """API keys in Postgres; ``box`` seals HMAC secrets (and refuses without a master key)."""

    def __init__(self, pool: asyncpg.Pool | asyncpg.Connection, box: SecretBox) -> None:
        self._db = pool
        self._box = box

    async def create_ed25519(
        self,
        account_id: int,
        public_key: bytes,
        scopes: Sequence[Scope],
        *,
        allow_ips: Sequence[IpNetwork] = (),
        expires_at: datetime | None = None,
    ) -> CreatedKey:
        key = parse_public_key(public_key)
        return await self._insert(
            self._db, account_id, "ed25519", scopes, allow_ips, expires_at, None, public_key=key
        )

    async def create_hmac(
        self,
        account_id: int,
        scopes: Sequence[Scope],
        *,
        allow_ips: Sequence[IpNetwork] = (),
        expires_at: datetime | None = None,
    ) -> CreatedKey:
        return await self._insert(
            self._db, account_id, "hmac", scopes, allow_ips, expires_at, None, public_key=None
        )

    async def _insert(
        self,
        db: Any,
        account_id: int,
        kind: KeyKind,
        scopes: Sequence[Scope],
        allow_ips: Sequence[IpNetwork],
        expires_at: datetime | None,
        rotated_from: str | None,
        *,
        public_key: bytes | None,
    ) -> CreatedKey:
        if not scopes:
            raise KeyStoreError("a key needs at least one scope (read, trade, withdraw, admin)")
        key_id = new_key_id()
        nonce = ciphertext = None
        secret = None
        if kind == "hmac":
            raw = os.urandom(32)
            nonce, ciphertext = self._box.seal(key_id, raw)  # refuses before any write
            secret = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        row = await db.fetchrow(
            f"INSERT INTO api_keys (key_id, account_id, kind, scopes, allow_ips, expires_at, "
            f"rotated_from, public_key, secret_nonce, secret_ciphertext) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}",
            key_id,
            account_id,
            kind,
            [s.value for s in scopes],
            list(allow_ips) or None,
            expires_at,
            rotated_from,
            public_key,
            nonce,
            ciphertext,
        )
        return CreatedKey(_row(row, with_secret=False), secret)

    async def list(self, account_id: int) -> list[ApiKey]:
        """Every key of an account, oldest first, without secrets."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM api_keys WHERE account_id = $1 ORDER BY created_at, key_id",
            account_id,
        )
        return [_row(r, with_secret=False) for r in rows]

    async def get(self, key_id: str) -> ApiKey | None:
        """One key for verification (its sealed secret included), or None."""
        row = await self._db.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1", key_id)
        return None if row is None else _row(row, with_secret=True)

    def hmac_secret(self, key: ApiKey) -> bytes:
        """The key bytes of an HMAC key (decrypted with the master key)."""
        if key.secret_nonce is None or key.secret_ciphertext is None:
            raise KeyStoreError(f"key {key.key_id} has no HMAC secret")
        return self._box.open(key.key_id, key.secret_nonce, key.secret_ciphertext)

    async def disable(self, key_id: str) -> ApiKey:
        row = await self._db.fetchrow(
            f"UPDATE api_keys SET disabled_at = now() WHERE key_id = $1 AND disabled_at IS NULL "
            f"RETURNING {_COLUMNS}",
            key_id,
        )
        if row is None:
            raise KeyStoreError(await self._why_not_active(key_id))
        return _row(row, with_secret=False)

    async def rotate(
        self, key_id: str, *, kind: KeyKind | None = None, public_key: bytes | None = None
    ) -> CreatedKey:
        """A new key replacing ``key_id`` (same kind unless given); the old one is disabled."""
        old = await self.get(key_id)
        if old is None or old.disabled_at is not None:
            raise KeyStoreError(await self._why_not_active(key_id))
        new_kind: KeyKind = kind or ("ed25519" if public_key is not None else old.kind)
        if new_kind == "ed25519" and public_key is None:
            raise KeyStoreError("rotating to an Ed25519 key needs the new public key")
        pub = parse_public_key(public_key) if new_kind == "ed25519" and public_key else None
        pool = self._db
        acquire = pool.acquire() if isinstance(pool, asyncpg.Pool) else _Same(pool)
        async with acquire as conn, conn.transaction():
            disabled = await conn.execute(
                "UPDATE api_keys SET disabled_at = now() WHERE key_id = $1 AND disabled_at IS NULL",
                key_id,
            )
            if disabled != "UPDATE 1":
                raise KeyStoreError(f"key {key_id} was disabled meanwhile")
            return await self._insert(
                conn,
                old.account_id,
                new_kind,
                old.scopes,
                old.allow_ips,
                old.expires_at,
                key_id,
                public_key=pub,
            )

    async def _why_not_active(self, key_id: str) -> str:
        row = await self._db.fetchrow("SELECT disabled_at FROM api_keys WHERE key_id = $1", key_id)
        return f"unknown key {key_id}" if row is None else f"key {key_id} is already disabled"


class _Same:
    """A connection used as if acquired from a pool."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def __aenter__(self) -> Any:
        return self._conn

    async def __aexit__(self, *exc: object) -> None:
        return None

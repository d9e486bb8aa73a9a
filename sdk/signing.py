"""Signed requests, client side: the headers that authenticate one REST request.

The server verifies the same canonical payload (``gateway/auth/signing.py``); the shared
vectors in ``sdk/signing_vectors.json`` pin both sides to one algorithm:

    payload = timestamp_ms + "\\n" + METHOD + "\\n" + path + "\\n" + query + "\\n" + body

``timestamp_ms`` is milliseconds since the epoch in decimal, ``query`` the query string
exactly as sent (without ``?``; empty if none), ``body`` the raw body bytes. The signature is
Ed25519 over the payload, or HMAC-SHA256 keyed by the secret's bytes, in standard base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_HEADER = "CX-Key"
TIMESTAMP_HEADER = "CX-Timestamp"
SIGNATURE_HEADER = "CX-Signature"


def canonical_payload(timestamp_ms: int, method: str, path: str, query: str, body: bytes) -> bytes:
    """The bytes a request's signature covers."""
    return f"{timestamp_ms}\n{method.upper()}\n{path}\n{query}\n".encode() + body


def decode_secret(secret: str) -> bytes:
    """An HMAC secret as handed out once (unpadded base64url) -> its key bytes."""
    return base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))


@dataclass(frozen=True)
class _Signer(ABC):
    """What both kinds share: the headers around a signature of the canonical payload."""

    key_id: str

    @abstractmethod
    def sign(self, payload: bytes) -> bytes:
        """The raw signature of ``payload``."""

    def headers(
        self,
        method: str,
        path: str,
        query: str = "",
        body: bytes = b"",
        *,
        timestamp_ms: int | None = None,
    ) -> dict[str, str]:
        """The three headers for one request (now, unless ``timestamp_ms`` is given)."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        signature = self.sign(canonical_payload(ts, method, path, query, body))
        return {
            KEY_HEADER: self.key_id,
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        }


@dataclass(frozen=True)
class Ed25519Signer(_Signer):
    """Signs with an Ed25519 private key (its 32-byte seed); the server holds the public key."""

    private_key: bytes

    def sign(self, payload: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.private_key).sign(payload)


@dataclass(frozen=True)
class HmacSigner(_Signer):
    """Signs with HMAC-SHA256; ``secret`` is the string ``cx key create --hmac`` printed."""

    secret: str

    def sign(self, payload: bytes) -> bytes:
        return hmac.new(decode_secret(self.secret), payload, hashlib.sha256).digest()

"""HMAC secrets at rest: AES-256-GCM under the configured key-encryption key.

The key id is the associated data, so a ciphertext copied onto another key's row does not
decrypt. Without the right master key nothing decrypts (``SecretUnavailable``).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32
HOW_TO_CONFIGURE = (
    "set CX_KEY_ENCRYPTION_KEY (or [gateway] key_encryption_key) to 32 random bytes in "
    'base64, e.g. python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"'
)


class SecretUnavailable(RuntimeError):
    """No master key is configured, or it is not the one the secret was sealed with."""


def parse_master_key(text: str) -> bytes:
    """The configured master key (base64 of 32 bytes) -> bytes; ValueError if malformed."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"key_encryption_key is not base64: {exc}") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"key_encryption_key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


class SecretBox:
    """Seals and opens HMAC secrets with one master key."""

    def __init__(self, master_key: bytes | None) -> None:
        self._aead = AESGCM(master_key) if master_key is not None else None

    def _require(self) -> AESGCM:
        if self._aead is None:
            raise SecretUnavailable(f"no key-encryption key is configured: {HOW_TO_CONFIGURE}")
        return self._aead

    def seal(self, key_id: str, secret: bytes) -> tuple[bytes, bytes]:
        """(nonce, ciphertext) of ``secret`` bound to ``key_id``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._require().encrypt(nonce, secret, key_id.encode())

    def open(self, key_id: str, nonce: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._require().decrypt(nonce, ciphertext, key_id.encode())
        except InvalidTag:
            raise SecretUnavailable(
                f"the secret of key {key_id} does not decrypt under the configured "
                "key-encryption key"
            ) from None

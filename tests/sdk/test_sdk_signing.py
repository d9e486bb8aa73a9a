"""The SDK signs the shared vectors exactly, and the canonical payload is what it says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from importlib.resources import files

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sdk.signing import Ed25519Signer, HmacSigner, canonical_payload, decode_secret


def test_the_sdk_produces_the_shared_vectors() -> None:
    vectors = json.loads(files("sdk").joinpath("signing_vectors.json").read_text())
    ed = vectors["keys"]["ed25519"]
    hm = vectors["keys"]["hmac"]
    signers = {
        "ed25519": Ed25519Signer(ed["key_id"], bytes.fromhex(ed["private_key_hex"])),
        "hmac": HmacSigner(hm["key_id"], hm["secret"]),
    }
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(ed["public_key_hex"]))
    kinds = set()
    for case in vectors["cases"]:
        kinds.add(case["kind"])
        body = case["body"].encode()
        payload = canonical_payload(
            case["timestamp_ms"], case["method"], case["path"], case["query"], body
        )
        assert payload == case["payload"].encode()
        headers = signers[case["kind"]].headers(
            case["method"], case["path"], case["query"], body, timestamp_ms=case["timestamp_ms"]
        )
        assert headers == case["headers"]
        sig = base64.b64decode(headers["CX-Signature"])
        if case["kind"] == "hmac":  # checked independently of the signer
            assert sig == hmac.new(decode_secret(hm["secret"]), payload, hashlib.sha256).digest()
        else:
            public.verify(sig, payload)  # raises if wrong
    assert kinds == {"ed25519", "hmac"}


def test_the_payload_layout() -> None:
    assert canonical_payload(5, "post", "/a", "x=1", b"{}") == b"5\nPOST\n/a\nx=1\n{}"
    assert canonical_payload(5, "GET", "/a", "", b"") == b"5\nGET\n/a\n\n"

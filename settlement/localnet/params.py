"""Checking JSON-RPC params: every malformed argument becomes -32602 with a clear message."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import based58
from solders.pubkey import Pubkey
from solders.signature import Signature

from .errors import invalid_params

U64_MAX = 2**64 - 1
PACKET_DATA_SIZE = 1232  # the largest serialized transaction a cluster accepts
_MAX_ENCODED = {"base58": 1683, "base64": 1644}


def positional(params: Any, required: int, allowed: int) -> list[Any]:
    """``params`` as a list of ``required``..``allowed`` entries."""
    if params is None:
        params = []
    if not isinstance(params, list):
        raise invalid_params("Invalid params: expected an array of positional parameters")
    if not required <= len(params) <= allowed:
        want = str(required) if required == allowed else f"{required} to {allowed}"
        raise invalid_params(f"Invalid params: expected {want} parameters, got {len(params)}")
    return params


def config_at(params: list[Any], index: int) -> dict[str, Any]:
    """The optional config object at ``index`` ({} when absent or null)."""
    if index >= len(params) or params[index] is None:
        return {}
    config = params[index]
    if not isinstance(config, dict):
        raise invalid_params(f"Invalid params: parameter {index} must be a config object")
    return config


def pubkey(value: Any, what: str = "pubkey") -> Pubkey:
    if not isinstance(value, str):
        raise invalid_params(f"Invalid param: {what} must be a base58 string")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise invalid_params(f"Invalid param: {what} {value!r} is not a valid public key") from None


def signature(value: Any) -> Signature:
    if not isinstance(value, str):
        raise invalid_params("Invalid param: signature must be a base58 string")
    try:
        return Signature.from_string(value)
    except ValueError:
        raise invalid_params(f"Invalid param: {value!r} is not a valid signature") from None


def uint(value: Any, what: str, maximum: int = U64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise invalid_params(f"Invalid param: {what} must be an integer from 0 to {maximum}")
    return value


def string_list(value: Any, what: str, maximum: int) -> list[str]:
    if not isinstance(value, list):
        raise invalid_params(f"Invalid params: {what} must be an array")
    if len(value) > maximum:
        raise invalid_params(f"Too many inputs provided; max {maximum}")
    return value


def decode_wire(value: Any, encoding: str, what: str, limit: int = PACKET_DATA_SIZE) -> bytes:
    """Bytes of an encoded transaction or message, with a node's size limits."""
    if encoding not in _MAX_ENCODED:
        raise invalid_params(
            f"Invalid params: unsupported encoding {encoding!r} (use base58 or base64)"
        )
    if not isinstance(value, str):
        raise invalid_params(f"Invalid params: {what} must be a {encoding} string")
    if len(value) > _MAX_ENCODED[encoding]:
        raise invalid_params(
            f"{encoding} encoded {what} too large: {len(value)} bytes "
            f"(max: encoded/raw {_MAX_ENCODED[encoding]}/{limit})"
        )
    try:
        if encoding == "base64":
            raw = base64.b64decode(value, validate=True)
        else:
            raw = based58.b58decode(value.encode())
    except (binascii.Error, ValueError):
        raise invalid_params(f"invalid {encoding} encoding of {what}") from None
    if len(raw) > limit:
        raise invalid_params(f"decoded {what} too large: {len(raw)} bytes (max: {limit} bytes)")
    return raw


def blockhash_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise invalid_params("Invalid param: blockhash must be a base58 string")
    try:
        raw = based58.b58decode(value.encode())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise invalid_params(f"Invalid param: {value!r} is not a valid blockhash")
    return raw

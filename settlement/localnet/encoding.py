"""Account encodings of the RPC (base58, base64, jsonParsed), as a node renders them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeGuard

from solders.account import Account
from spl.token.constants import TOKEN_2022_PROGRAM_ID

from .errors import invalid_params
from .token import parse_mint, parse_token_account, parsed_mint, parsed_token_account
from .txmeta import b58

ACCOUNT_ENCODINGS = ("binary", "base58", "base64", "jsonParsed", "base64+zstd")
_MAX_BASE58_BYTES = 128


def check_account_encoding(config: dict[str, Any], default: str = "binary") -> str:
    """The requested encoding, refused with -32602 when unknown or unsupported here."""
    encoding = config.get("encoding") or default
    if encoding not in ACCOUNT_ENCODINGS:
        raise invalid_params(f"Invalid params: unknown encoding {encoding!r}")
    if encoding == "base64+zstd":
        raise invalid_params("Invalid params: base64+zstd is not supported by the local node")
    return encoding


def check_data_slice(config: dict[str, Any]) -> tuple[int, int] | None:
    ds = config.get("dataSlice")
    if ds is None:
        return None
    offset, length = (ds.get("offset"), ds.get("length")) if isinstance(ds, dict) else (0, 0)
    if not (_is_uint(offset) and _is_uint(length)):
        raise invalid_params("Invalid params: dataSlice needs integer offset and length")
    return offset, length


def _is_uint(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def encode_account(
    acc: Account,
    encoding: str,
    data_slice: tuple[int, int] | None,
    mint_decimals: Callable[[Any], int | None],
) -> dict[str, Any]:
    """The UiAccount JSON of ``acc``."""
    data = bytes(acc.data)
    space = len(data)
    if data_slice is not None:
        data = data[data_slice[0] : data_slice[0] + data_slice[1]]
    ui_data: Any
    if encoding == "jsonParsed" and data_slice is None:
        ui_data = _json_parsed(acc, data, mint_decimals)
        if ui_data is None:
            ui_data = [base64.b64encode(data).decode(), "base64"]
    elif encoding in ("base64", "jsonParsed"):
        ui_data = [base64.b64encode(data).decode(), "base64"]
    else:
        if len(data) > _MAX_BASE58_BYTES:
            raise invalid_params(
                "Encoded binary (base 58) data should be less than 128 bytes, "
                "please use Base64 encoding."
            )
        ui_data = b58(data) if encoding == "binary" else [b58(data), "base58"]
    return {
        "data": ui_data,
        "executable": acc.executable,
        "lamports": acc.lamports,
        "owner": str(acc.owner),
        "rentEpoch": acc.rent_epoch,
        "space": space,
    }


def _json_parsed(
    acc: Account, data: bytes, mint_decimals: Callable[[Any], int | None]
) -> dict[str, Any] | None:
    program = "spl-token-2022" if acc.owner == TOKEN_2022_PROGRAM_ID else "spl-token"
    token = parse_token_account(acc.owner, data)
    if token is not None:
        decimals = mint_decimals(token.mint)
        if decimals is None:
            return None
        parsed = parsed_token_account(token, decimals)
    else:
        mint = parse_mint(acc.owner, data)
        if mint is None:
            return None
        parsed = parsed_mint(mint)
    return {"program": program, "parsed": parsed, "space": len(data)}

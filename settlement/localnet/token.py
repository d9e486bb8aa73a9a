"""SPL Token account layouts, read the way a node's account decoder reads them.

Used for getTokenAccountBalance, token balances in transaction metadata and the
jsonParsed encoding. Token-2022 accounts share the base layout (extensions follow it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

TOKEN_PROGRAMS = frozenset({TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID})
ACCOUNT_LEN = 165
MINT_LEN = 82
_ACCOUNT_TYPE_MINT = 1  # Token-2022: byte 165 tags extended accounts
_ACCOUNT_TYPE_ACCOUNT = 2
_STATES = {0: "uninitialized", 1: "initialized", 2: "frozen"}


@dataclass(frozen=True, slots=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: int
    is_native: int | None
    delegated_amount: int
    close_authority: Pubkey | None


@dataclass(frozen=True, slots=True)
class Mint:
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None


def _coption_key(data: bytes, at: int) -> Pubkey | None:
    return Pubkey.from_bytes(data[at + 4 : at + 36]) if data[at] == 1 else None


def _is_kind(data: bytes, base_len: int, tag: int) -> bool:
    if len(data) == base_len:
        return True
    return len(data) > ACCOUNT_LEN and data[ACCOUNT_LEN] == tag


def parse_token_account(owner: Pubkey, data: bytes) -> TokenAccount | None:
    """The token account in ``data``, or None if it is not an initialized token account."""
    if owner not in TOKEN_PROGRAMS or not _is_kind(data, ACCOUNT_LEN, _ACCOUNT_TYPE_ACCOUNT):
        return None
    state = data[108]
    if state == 0:
        return None
    amount, delegated = struct.unpack_from("<Q", data, 64)[0], struct.unpack_from("<Q", data, 121)
    native = struct.unpack_from("<Q", data, 113)[0] if data[109] == 1 else None
    return TokenAccount(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=amount,
        delegate=_coption_key(data, 72),
        state=state,
        is_native=native,
        delegated_amount=delegated[0],
        close_authority=_coption_key(data, 129),
    )


def token_balance_fields(owner: Pubkey, data: bytes) -> tuple[str, str, int] | None:
    """(mint, owner, amount) of an initialized token account; the cheap path for tx metadata."""
    if owner not in TOKEN_PROGRAMS or len(data) < ACCOUNT_LEN or data[108] == 0:
        return None
    if not _is_kind(data, ACCOUNT_LEN, _ACCOUNT_TYPE_ACCOUNT):
        return None
    return (
        str(Pubkey.from_bytes(data[0:32])),
        str(Pubkey.from_bytes(data[32:64])),
        int.from_bytes(data[64:72], "little"),
    )


def parse_mint(owner: Pubkey, data: bytes) -> Mint | None:
    """The mint in ``data``, or None if it is not an initialized mint."""
    if owner not in TOKEN_PROGRAMS or len(data) < MINT_LEN:
        return None
    if len(data) != MINT_LEN and not _is_kind(data, MINT_LEN, _ACCOUNT_TYPE_MINT):
        return None
    if data[45] != 1:
        return None
    return Mint(
        mint_authority=_coption_key(data, 0),
        supply=struct.unpack_from("<Q", data, 36)[0],
        decimals=data[44],
        is_initialized=True,
        freeze_authority=_coption_key(data, 46),
    )


def ui_amount_string(amount: int, decimals: int) -> str:
    """Exact decimal string without trailing zeros, as the node renders ``uiAmountString``."""
    if decimals == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**decimals)
    frac_s = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{whole}.{frac_s}" if frac_s else str(whole)


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    """The node's UiTokenAmount object (``uiAmount`` is a float only because the API says so)."""
    text = ui_amount_string(amount, decimals)
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": float(text),
        "uiAmountString": text,
    }


def parsed_token_account(acc: TokenAccount, decimals: int) -> dict[str, Any]:
    """``jsonParsed`` info of a token account."""
    info: dict[str, Any] = {
        "isNative": acc.is_native is not None,
        "mint": str(acc.mint),
        "owner": str(acc.owner),
        "state": _STATES[acc.state],
        "tokenAmount": ui_token_amount(acc.amount, decimals),
    }
    if acc.delegate is not None:
        info["delegate"] = str(acc.delegate)
        info["delegatedAmount"] = ui_token_amount(acc.delegated_amount, decimals)
    if acc.is_native is not None:
        info["rentExemptReserve"] = ui_token_amount(acc.is_native, decimals)
    if acc.close_authority is not None:
        info["closeAuthority"] = str(acc.close_authority)
    return {"info": info, "type": "account"}


def parsed_mint(mint: Mint) -> dict[str, Any]:
    """``jsonParsed`` info of a mint."""
    return {
        "info": {
            "decimals": mint.decimals,
            "freezeAuthority": None
            if mint.freeze_authority is None
            else str(mint.freeze_authority),
            "isInitialized": mint.is_initialized,
            "mintAuthority": None if mint.mint_authority is None else str(mint.mint_authority),
            "supply": str(mint.supply),
        },
        "type": "mint",
    }

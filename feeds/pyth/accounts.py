"""Decoders for the two kinds of Pyth price account on Solana.

- ``PriceUpdateV2`` (pull oracle): an Anchor account owned by Pyth's receiver program, decoded
  with anchorpy from the legacy-format IDL beside this module (anchorpy reads no other format).
- Legacy push price accounts (``pc_price_t``, version 2): decoded with pythclient's
  ``PythPriceAccount.update_from`` after the 16-byte header is checked here.

Both refuse data that is not what it claims (owner, discriminator, magic, type, size) with an
``AccountDecodeError`` whose ``reason`` is a short code the reader counts by.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from anchorpy import Idl
from anchorpy.coder.accounts import ACCOUNT_DISCRIMINATOR_SIZE, AccountsCoder
from pythclient.pythaccounts import PythPriceAccount
from solders.pubkey import Pubkey

from feeds.pyth.catalog import LEGACY_ORACLE_PROGRAM_IDS, RECEIVER_PROGRAM_ID
from feeds.pyth.quote import PriceStatus

IDL_PATH = Path(__file__).with_name("idl") / "pyth_solana_receiver.json"
PRICE_UPDATE_V2 = "PriceUpdateV2"
# discriminator 8 + write authority 32 + verification level 1..2 + message 84 + posted slot 8
PRICE_UPDATE_V2_MIN_LEN = 8 + 32 + 1 + 84 + 8

LEGACY_MAGIC = 0xA1B2C3D4
LEGACY_VERSION = 2
LEGACY_TYPE_PRICE = 3
LEGACY_HEADER = struct.Struct("<IIII")  # magic, version, account type, used size
LEGACY_AGG_END = 240  # header 16 + fixed fields 192 + aggregate price info 32


class AccountDecodeError(ValueError):
    """The bytes are not a usable Pyth price account; ``reason`` says why in one word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """A decoded ``PriceUpdateV2`` account (Pyth's field names, integers as published)."""

    write_authority: Pubkey
    verification: str  # "Full" or "Partial"
    num_signatures: int | None  # for Partial only
    feed_id: bytes
    price: int
    conf: int
    expo: int
    publish_time: int
    prev_publish_time: int
    ema_price: int
    ema_conf: int
    posted_slot: int

    @property
    def fully_verified(self) -> bool:
        return self.verification == "Full"


@dataclass(frozen=True, slots=True)
class LegacyPrice:
    """The aggregate of a legacy push price account, as pythclient reads it."""

    price: int
    conf: int
    expo: int
    publish_time: int  # the aggregate's unix timestamp
    status: PriceStatus  # already UNKNOWN when the aggregate is older than max latency slots
    pub_slot: int
    product: Pubkey
    num_publishers: int


@cache
def receiver_coder() -> AccountsCoder:
    """anchorpy's coder for the receiver's accounts, built once from the legacy IDL."""
    return AccountsCoder(Idl.from_json(IDL_PATH.read_text()))


def price_update_discriminator() -> bytes:
    return receiver_coder().acc_name_to_discriminator[PRICE_UPDATE_V2]


def decode_price_update_v2(data: bytes, owner: Pubkey | None = None) -> PriceUpdate:
    """Decode a ``PriceUpdateV2`` account; ``owner`` (when given) must be the receiver program."""
    if owner is not None and owner != RECEIVER_PROGRAM_ID:
        raise AccountDecodeError("wrong_owner", f"owned by {owner}, not the Pyth receiver")
    if len(data) < PRICE_UPDATE_V2_MIN_LEN:
        raise AccountDecodeError("too_short", f"{len(data)} bytes")
    if data[:ACCOUNT_DISCRIMINATOR_SIZE] != price_update_discriminator():
        raise AccountDecodeError("wrong_discriminator", "not a PriceUpdateV2 account")
    try:
        decoded = receiver_coder().decode(data)
    except Exception as exc:  # construct raises its own hierarchy
        raise AccountDecodeError("malformed", str(exc)) from exc
    level = decoded.verification_level
    msg = decoded.price_message
    return PriceUpdate(
        write_authority=decoded.write_authority,
        verification=type(level).__name__,
        num_signatures=getattr(level, "num_signatures", None),
        feed_id=bytes(msg.feed_id),
        price=msg.price,
        conf=msg.conf,
        expo=msg.exponent,
        publish_time=msg.publish_time,
        prev_publish_time=msg.prev_publish_time,
        ema_price=msg.ema_price,
        ema_conf=msg.ema_conf,
        posted_slot=decoded.posted_slot,
    )


def decode_legacy_price(
    data: bytes, key: Pubkey, *, owner: Pubkey | None = None, slot: int | None = None
) -> LegacyPrice:
    """Decode a legacy (push) price account, version 2.

    With ``slot`` (the slot the account was read at), a TRADING aggregate older than the
    feed's max latency in slots reads as UNKNOWN: pythclient's rule, and Pyth's.
    """
    if owner is not None and owner not in LEGACY_ORACLE_PROGRAM_IDS:
        raise AccountDecodeError("wrong_owner", f"owned by {owner}, not the Pyth oracle")
    if len(data) < LEGACY_AGG_END:
        raise AccountDecodeError("too_short", f"{len(data)} bytes")
    magic, version, acc_type, size = LEGACY_HEADER.unpack_from(data)
    if magic != LEGACY_MAGIC:
        raise AccountDecodeError("bad_magic", f"magic {magic:#010x}")
    if version != LEGACY_VERSION:
        raise AccountDecodeError("unsupported_version", f"version {version}")
    if acc_type != LEGACY_TYPE_PRICE:
        raise AccountDecodeError("wrong_type", f"account type {acc_type} is not a price")
    if not LEGACY_AGG_END <= size <= len(data):
        raise AccountDecodeError("malformed", f"header size {size} for {len(data)} bytes")
    account = PythPriceAccount(str(key), None)  # no RPC: decoding bytes only
    try:
        account.update_from(data[:size], version=version, offset=LEGACY_HEADER.size)
        info = account.aggregate_price_info
        status = (
            info.price_status
            if slot is None
            else account.get_aggregate_price_status_with_slot(slot)
        )
    except Exception as exc:  # pythclient raises ValueError/struct.error on bad bytes
        raise AccountDecodeError("malformed", str(exc)) from exc
    return LegacyPrice(
        price=info.raw_price,
        conf=info.raw_confidence_interval,
        expo=account.exponent or 0,
        publish_time=account.timestamp,
        status=PriceStatus(status.value),
        pub_slot=info.pub_slot,
        product=Pubkey.from_string(str(account.product_account_key)),
        num_publishers=account.num_components,
    )

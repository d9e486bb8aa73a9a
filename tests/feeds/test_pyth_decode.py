"""Both Pyth account layouts, built byte by byte from Pyth's published layouts.

The bytes here come from struct.pack following the layouts Pyth publishes (the receiver's
PriceUpdateV2 Anchor account; the oracle program's pc_price_t, version 2), never from our
own encoder, so a decoder that drifts from them fails here.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from solders.pubkey import Pubkey

from feeds.pyth.accounts import AccountDecodeError, decode_legacy_price, decode_price_update_v2
from feeds.pyth.quote import PriceStatus

RECEIVER = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
ORACLE = Pubkey.from_string("FsJ3A3u2vn5cTVofAjvy6y5kwABJAqYWpe4975bi2epH")
SOL_FEED = bytes.fromhex("ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d")
# Anchor: the first 8 bytes of sha256("account:PriceUpdateV2"), as published in Pyth's SDKs
PRICE_UPDATE_V2_DISCRIMINATOR = bytes([34, 241, 35, 99, 157, 126, 244, 205])
AUTHORITY = bytes(range(1, 33))


def price_update_v2(*, level: bytes = b"\x01", feed: bytes = SOL_FEED, **fields: int) -> bytes:
    """discriminator, write_authority, VerificationLevel (Borsh enum), PriceFeedMessage, slot."""
    f = {
        "price": 14_523_456_789,
        "conf": 7_654_321,
        "exponent": -8,
        "publish_time": 1_760_000_000,
        "prev_publish_time": 1_759_999_999,
        "ema_price": 14_500_000_000,
        "ema_conf": 7_000_000,
        "posted_slot": 987_654,
    } | fields
    message = feed + struct.pack(
        "<qQiqqqQ",
        f["price"],
        f["conf"],
        f["exponent"],
        f["publish_time"],
        f["prev_publish_time"],
        f["ema_price"],
        f["ema_conf"],
    )
    data = PRICE_UPDATE_V2_DISCRIMINATOR + AUTHORITY + level + message
    data += struct.pack("<Q", f["posted_slot"])
    return data.ljust(134, b"\x00")  # the receiver allocates room for the Partial variant


def test_discriminator_is_anchors_rule() -> None:
    assert hashlib.sha256(b"account:PriceUpdateV2").digest()[:8] == PRICE_UPDATE_V2_DISCRIMINATOR


def test_price_update_v2_full() -> None:
    update = decode_price_update_v2(price_update_v2(), RECEIVER)
    assert update.verification == "Full" and update.fully_verified
    assert update.num_signatures is None
    assert bytes(update.write_authority) == AUTHORITY
    assert update.feed_id == SOL_FEED
    assert (update.price, update.conf, update.expo) == (14_523_456_789, 7_654_321, -8)
    assert (update.publish_time, update.prev_publish_time) == (1_760_000_000, 1_759_999_999)
    assert (update.ema_price, update.ema_conf, update.posted_slot) == (
        14_500_000_000,
        7_000_000,
        987_654,
    )


def test_price_update_v2_partial_and_negative_price() -> None:
    data = price_update_v2(level=b"\x00\x05", price=-42, exponent=-5, posted_slot=3)
    update = decode_price_update_v2(data, RECEIVER)
    assert update.verification == "Partial" and not update.fully_verified
    assert update.num_signatures == 5
    assert (update.price, update.expo, update.posted_slot) == (-42, -5, 3)


def test_price_update_v2_extremes() -> None:
    big = 2**63 - 1
    data = price_update_v2(price=big, conf=2**64 - 1, exponent=-(2**31), publish_time=big)
    update = decode_price_update_v2(data)
    assert (update.price, update.conf, update.expo, update.publish_time) == (
        big,
        2**64 - 1,
        -(2**31),
        big,
    )


@pytest.mark.parametrize(
    ("data", "owner", "reason"),
    [
        (price_update_v2(), ORACLE, "wrong_owner"),
        (b"\x00" * 8 + price_update_v2()[8:], RECEIVER, "wrong_discriminator"),
        (price_update_v2()[:100], RECEIVER, "too_short"),
        (price_update_v2(level=b"\x07"), RECEIVER, "malformed"),
    ],
)
def test_price_update_v2_refusals(data: bytes, owner: Pubkey, reason: str) -> None:
    with pytest.raises(AccountDecodeError) as err:
        decode_price_update_v2(data, owner)
    assert err.value.reason == reason


# -- legacy push price account (pc_price_t, version 2) ------------------------------------------
PRODUCT = bytes([7] * 32)
PUBLISHERS = [bytes([9] * 32), bytes([10] * 32)]


def price_info(price: int, conf: int, status: int, pub_slot: int) -> bytes:
    return struct.pack("<qQIIQ", price, conf, status, 0, pub_slot)  # corp_act_status = 0


def legacy_price(
    *,
    magic: int = 0xA1B2C3D4,
    version: int = 2,
    acc_type: int = 3,
    status: int = 1,
    max_latency: int = 0,
    pub_slot: int = 5_000,
) -> bytes:
    n_comp = 32
    size = 240 + 96 * n_comp
    data = struct.pack("<IIII", magic, version, acc_type, size)
    data += struct.pack("<IiII", 1, -8, len(PUBLISHERS), 2)  # price type, expo, num, num_qt
    data += struct.pack("<QQ", pub_slot, pub_slot - 1)  # last_slot, valid_slot
    data += struct.pack("<qqq", 14_400_000_000, 0, 0)  # twap (EMA price)
    data += struct.pack("<qqq", 6_000_000, 0, 0)  # twac (EMA confidence)
    # timestamp, min_pub, message_sent, max_latency, unused i8, unused i32
    data += struct.pack("<qBBBbi", 1_760_000_042, 3, 1, max_latency, 0, 0)
    data += PRODUCT + bytes(32)  # product account, next price account (none)
    data += struct.pack("<QqQq", pub_slot - 2, 14_300_000_000, 5_000_000, 1_760_000_041)
    data += price_info(14_411_223_344, 5_566_778, status, pub_slot)  # the aggregate
    for key in PUBLISHERS:
        data += key + price_info(14_411_000_000, 5_000_000, 1, pub_slot)
        data += price_info(14_412_000_000, 6_000_000, 1, pub_slot)
    assert len(data) == 240 + 96 * len(PUBLISHERS)
    return data.ljust(size, b"\x00")


KEY = Pubkey.from_string("H6ARHf6YXhGYeQfUzQNGk6rDNnLBQKrenN712K4AQJEG")


def test_legacy_price_account() -> None:
    price = decode_legacy_price(legacy_price(), KEY, owner=ORACLE)
    assert (price.price, price.conf, price.expo) == (14_411_223_344, 5_566_778, -8)
    assert price.publish_time == 1_760_000_042
    assert price.status == PriceStatus.TRADING
    assert price.pub_slot == 5_000
    assert bytes(price.product) == PRODUCT
    assert price.num_publishers == 2


def test_legacy_price_status_is_read_not_assumed() -> None:
    assert decode_legacy_price(legacy_price(status=2), KEY).status == PriceStatus.HALTED
    assert decode_legacy_price(legacy_price(status=0), KEY).status == PriceStatus.UNKNOWN


def test_legacy_price_too_many_slots_behind_reads_unknown() -> None:
    data = legacy_price(pub_slot=5_000)  # max latency 0 means Pyth's default of 25 slots
    assert decode_legacy_price(data, KEY, slot=5_025).status == PriceStatus.TRADING
    assert decode_legacy_price(data, KEY, slot=5_026).status == PriceStatus.UNKNOWN
    wider = legacy_price(pub_slot=5_000, max_latency=60)
    assert decode_legacy_price(wider, KEY, slot=5_060).status == PriceStatus.TRADING


@pytest.mark.parametrize(
    ("data", "owner", "reason"),
    [
        (legacy_price(), RECEIVER, "wrong_owner"),
        (legacy_price(magic=0xDEADBEEF), ORACLE, "bad_magic"),
        (legacy_price(version=1), ORACLE, "unsupported_version"),
        (legacy_price(acc_type=2), ORACLE, "wrong_type"),
        (legacy_price()[:200], ORACLE, "too_short"),
        (legacy_price()[:1000], ORACLE, "malformed"),  # header claims more than there is
    ],
)
def test_legacy_refusals(data: bytes, owner: Pubkey, reason: str) -> None:
    with pytest.raises(AccountDecodeError) as err:
        decode_legacy_price(data, KEY, owner=owner)
    assert err.value.reason == reason

"""Kraken's book checksum and the decimal strings it is computed over."""

from __future__ import annotations

import zlib

import pytest

from feeds.marketdata.book import BUY, SELL, L2Book
from feeds.marketdata.checksum import checksum, checksum_text, digits
from feeds.marketdata.wire import WireFormat, places_for

# A book written the way Kraken's v1 documentation writes one (prices with 5 decimals,
# volumes with 8), asks lowest first and bids highest first.
KRAKEN_ASKS = [
    ("0.05005", "0.00000500"),
    ("0.05010", "0.00421000"),
    ("0.05015", "1.20000000"),
]
KRAKEN_BIDS = [
    ("0.05000", "0.00100000"),
    ("0.04995", "12.50000000"),
]
# By hand: '.' removed, leading zeros stripped, price then volume, asks then bids:
# 5005|500  5010|421000  5015|120000000  5000|100000  4995|1250000000
KRAKEN_TEXT = "500550050104210005015120000000500010000049951250000000"


def test_kraken_vector_text_and_crc() -> None:
    assert checksum_text(KRAKEN_ASKS, KRAKEN_BIDS) == KRAKEN_TEXT
    assert checksum(KRAKEN_ASKS, KRAKEN_BIDS) == zlib.crc32(KRAKEN_TEXT.encode())


def test_kraken_v2_level_format() -> None:
    # The v2 guide's one level: price 45285.2 qty 0.00100000 -> "452852" + "100000".
    assert digits("45285.2") + digits("0.00100000") == "452852100000"
    assert checksum_text([("45285.2", "0.00100000")], []) == "452852100000"


def test_only_the_top_ten_levels_count() -> None:
    asks = [(f"1.{i:03d}", "1") for i in range(1, 13)]
    bids = [(f"0.{999 - i:03d}", "2") for i in range(12)]
    text = checksum_text(asks, bids)
    assert text == "".join(f"1{i:03d}1" for i in range(1, 11)) + "".join(
        f"{999 - i}2" for i in range(10)
    )
    assert checksum(asks, bids) == checksum(asks[:10], bids[:10])
    assert checksum(asks, bids) != checksum(asks[:9], bids[:10])


def test_empty_book_checksum_is_crc_of_nothing() -> None:
    assert checksum([], []) == zlib.crc32(b"") == 0


def test_price_places_follow_the_tick() -> None:
    assert places_for(1_000, 6) == 3
    assert places_for(5_000, 6) == 3
    assert places_for(10_000, 6) == 2
    assert places_for(1_000_000, 6) == 0
    assert places_for(1, 0) == 0
    fmt = WireFormat.for_instrument(tick_size=1_000, lot_size=1)
    assert fmt == WireFormat()
    assert fmt.price(2_013_000) == "2.013"
    assert fmt.price(500_000) == "0.500"
    assert fmt.qty(25) == "25"
    assert fmt.parse_price("2.013") == 2_013_000
    assert WireFormat.for_instrument(10_000).price(2_010_000) == "2.01"
    with pytest.raises(ValueError):
        fmt.price(2_013_500)  # off the tick: refused, never rounded


def test_book_checksum_equals_checksum_of_its_published_levels() -> None:
    book = L2Book(7, WireFormat())
    for k in range(14):
        book.add(BUY, 2_000_000 - k * 1_000, k + 1)
        book.add(SELL, 2_001_000 + k * 1_000, 30 - k)
    bids, asks = book.levels(BUY), book.levels(SELL)
    assert bids[0] == ["2.000", "1"] and asks[0] == ["2.001", "30"]
    assert bids[1] == ["1.999", "2"] and asks[-1] == ["2.014", "17"]
    expected_text = "".join(f"{2001 + k}{30 - k}" for k in range(10)) + "".join(
        f"{2000 - k}{k + 1}" for k in range(10)
    )
    assert checksum_text(asks, bids) == expected_text
    assert book.checksum() == zlib.crc32(expected_text.encode())
    book.add(BUY, 2_000_000, -1)  # the best bid leaves; the 11th bid comes into range
    assert book.checksum() == checksum(book.levels(SELL), book.levels(BUY))
    assert book.levels(BUY)[0] == ["1.999", "2"]
    with pytest.raises(ValueError):
        book.add(SELL, 2_001_000, -31)

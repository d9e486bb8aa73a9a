"""numba kernels of the fast order book: every book, order and level lives in one int64 array.

The book's compiled code sits in this one module. numba's on-disk cache keys a kernel on
its own file only; ``matching.jit_cache`` (imported below) widens the key to every source
a kernel compiles in, so the kernels may be split when that helps reading them.

Why one array: numba passes each array argument as a wide descriptor and reference-counts
it at call boundaries; with a dozen pools that cost more than the matching itself. So all
state is a single arena ``mem`` (regions located by a header), borrowed once per batch as
a view the runtime does not count, and every helper takes ``m`` plus integers.

Regions (see ``new_state``): ``orders``, a pool of order rows linked FIFO per level and
per account; ``levels``, a pool of price levels; ``books``, one row per instrument id;
``bitmaps`` and ``chunks``, three-level bitmaps per (instrument, side) marking the ticks
that hold a level, so the next best price is a few word scans away however wide the
range, never a walk through empty ticks (the bottom level is allocated in chunks of 4,096
ticks only where levels are, so a million-tick range costs a few KiB, not 256);
``levelmap``, an open-addressing table (book side, tick) -> level; ``idmap``, the same
for order id -> slot; ``heap``, GTD slots ordered by (expiry, id); ``accounts``, the head
of each account's order list.
The rules are those of ``matching.reference`` (its docstring lists them); the two must
produce identical events.

Entry points for other packages (everything else here is private):

* ``BookState``, ``new_state``, ``add_book``, ``grow_*``: the arena, as the book owns it;
* ``run_batch``: run command rows; ``depth``, ``level_order_ids``, ``order_row``,
  ``account_order_rows``, ``snapshot_orders``, ``load_orders``: queries and restore;
* for a caller that compiles its own loop around ``run_batch`` (``exchange.engine_kernel``),
  on the borrowed arena ``m``: ``borrow``, ``validate_new``, ``owned_slot``,
  ``check_price_qty``, ``expiry_pending``, ``instrument_of``, ``side_of``, and the
  prefetch helpers ``prefetch_word``, ``prefetch_order_slot``/``_row``,
  ``prefetch_level_slot``/``_row``; with the layout constants (``H_*``, ``G_*``, ``O_*``,
  ``B_*``, ``OF``, ``BF``) and the ``run_batch`` statuses.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

import matching.jit_cache  # noqa: F401  (keys the numba cache on all inlined sources)
from matching import codes as c
from matching import hugepages


class BookState(NamedTuple):
    """What the kernels take as the book's state: the arena, named. A named tuple of arrays
    compiles to a plain struct, so naming it costs nothing."""

    mem: np.ndarray


# --- header: region offsets, capacities and global counters ---------------------------------
H_ORDERS = 0
H_ORDER_CAP = 1
H_LEVELS = 2
H_BOOKS = 3
H_BOOK_CAP = 4
H_BITMAPS = 5
H_BITMAP_CAP = 6  # words
H_IDMAP = 7
H_IDMAP_MASK = 8
H_HEAP = 9
H_ACCOUNTS = 10
H_ACCOUNT_CAP = 11
G_FREE_ORDER = 12
G_FREE_LEVEL = 13
G_LIVE = 14
G_MAX_ORDERS = 15
G_MAX_ACCOUNTS = 16
G_TRADE_ID = 17
G_NOW = 18
G_HEAP_N = 19
G_BITMAP_HWM = 20
H_LEVEL_CAP = 21
H_LEVELMAP = 22
H_LEVELMAP_MASK = 23
H_CHUNKS = 24
H_CHUNK_CAP = 25
G_FREE_CHUNK = 26
HEADER_WORDS = 32
PAGE_WORDS = 512  # 4 KiB

# --- order rows ------------------------------------------------------------------------
O_ID = 0
O_ACCOUNT = 1
O_SHOWN = 2
O_HIDDEN = 3
O_NEXT = 4  # next in level (or next free slot)
O_PREV = 5
O_LEVEL = 6
O_FILLED = 7
O_QTY = 8
O_PRICE = 9
O_META = 10  # instrument, side, time in force, STP mode and post-only, packed (_pack_meta)
O_DISPLAY = 11
O_EXPIRE = 12
O_ANEXT = 13  # account list
O_APREV = 14
O_HEAP_POS = 15
OF = 16  # 128 bytes: an order is two cache lines

# --- level rows ------------------------------------------------------------------------
L_PRICE = 0
L_HEAD = 1
L_TAIL = 2
L_VISIBLE = 3
L_COUNT = 4
L_FREE_NEXT = 5
L_TICK = 6  # (price - min price) / tick
LF = 7

# --- book rows (one per instrument id) ---------------------------------------------------
B_ACTIVE = 0
B_TICK = 1
B_LOT = 2
B_MIN_PRICE = 3
B_MAX_PRICE = 4
B_MIN_QTY = 5
B_MAX_QTY = 6
B_TICKS = 7  # prices in the range
B_BITMAP = 8  # + side index (0 bids, 1 asks): offset in the bitmap region
B_BEST = 10  # + side index: tick of the best level, or -1
B_BEST_LEVEL = 12  # + side index: the best level, or -1
B_WEIGHT = 14  # + side index: how many times a taker can touch that side
BF = 16

# --- run_batch status ----------------------------------------------------------------------
DONE = 0
GROW_ORDERS = 1
GROW_CHUNKS = 2
GROW_ACCOUNTS = 3
NEED_EVENT_ROOM = 4  # the event buffer must be drained (or grown) first
GROW_LEVELS = 5

TICK_BITS = 22  # level keys hold the tick in 22 bits: spec.MAX_TICKS must fit
CHUNK_WORDS = 64  # level-0 bitmap words per chunk: 4,096 ticks
EMPTY = -1

# Local copies: numba folds module-level ints into the compiled code as constants.
NEW_ORDER = int(c.BookCommandKind.NEW_ORDER)
CANCEL_ORDER = int(c.BookCommandKind.CANCEL_ORDER)
REPLACE_ORDER = int(c.BookCommandKind.REPLACE_ORDER)
MASS_CANCEL = int(c.BookCommandKind.MASS_CANCEL)
CLOCK_TICK = int(c.BookCommandKind.CLOCK_TICK)
EV_ACCEPTED = int(c.BookEventKind.ORDER_ACCEPTED)
EV_REJECTED = int(c.BookEventKind.ORDER_REJECTED)
EV_FILLED = int(c.BookEventKind.ORDER_FILLED)
EV_CANCELLED = int(c.BookEventKind.ORDER_CANCELLED)
EV_REPLACED = int(c.BookEventKind.ORDER_REPLACED)
EV_EXPIRED = int(c.BookEventKind.ORDER_EXPIRED)
EV_MASS_DONE = int(c.BookEventKind.MASS_CANCEL_DONE)
EV_CMD_REJECTED = int(c.BookEventKind.COMMAND_REJECTED)
BUY = int(c.Side.BUY)
SELL = int(c.Side.SELL)
LIMIT = int(c.OrderType.LIMIT)
MARKET = int(c.OrderType.MARKET)
GTC = int(c.TimeInForce.GTC)
IOC = int(c.TimeInForce.IOC)
FOK = int(c.TimeInForce.FOK)
GTD = int(c.TimeInForce.GTD)
STP_NEWEST = int(c.STPMode.CANCEL_NEWEST)
STP_OLDEST = int(c.STPMode.CANCEL_OLDEST)
STP_BOTH = int(c.STPMode.CANCEL_BOTH)
STP_DECREMENT = int(c.STPMode.DECREMENT_AND_CANCEL)
RJ_OK = int(c.BookReject.OK)
RJ_INVALID_COMMAND = int(c.BookReject.INVALID_COMMAND)
RJ_UNKNOWN_INSTRUMENT = int(c.BookReject.UNKNOWN_INSTRUMENT)
RJ_INVALID_ACCOUNT = int(c.BookReject.INVALID_ACCOUNT)
RJ_INVALID_ORDER_ID = int(c.BookReject.INVALID_ORDER_ID)
RJ_INVALID_SIDE = int(c.BookReject.INVALID_SIDE)
RJ_INVALID_ORDER_TYPE = int(c.BookReject.INVALID_ORDER_TYPE)
RJ_INVALID_TIME_IN_FORCE = int(c.BookReject.INVALID_TIME_IN_FORCE)
RJ_INVALID_STP_MODE = int(c.BookReject.INVALID_STP_MODE)
RJ_INVALID_POST_ONLY = int(c.BookReject.INVALID_POST_ONLY)
RJ_PRICE_OUT_OF_RANGE = int(c.BookReject.PRICE_OUT_OF_RANGE)
RJ_PRICE_OFF_TICK = int(c.BookReject.PRICE_OFF_TICK)
RJ_QUANTITY_OUT_OF_RANGE = int(c.BookReject.QUANTITY_OUT_OF_RANGE)
RJ_QUANTITY_OFF_LOT = int(c.BookReject.QUANTITY_OFF_LOT)
RJ_INVALID_DISPLAY_QUANTITY = int(c.BookReject.INVALID_DISPLAY_QUANTITY)
RJ_INVALID_EXPIRE_TIME = int(c.BookReject.INVALID_EXPIRE_TIME)
RJ_DUPLICATE_ORDER_ID = int(c.BookReject.DUPLICATE_ORDER_ID)
RJ_ORDER_POOL_FULL = int(c.BookReject.ORDER_POOL_FULL)
RJ_POST_ONLY_WOULD_TAKE = int(c.BookReject.POST_ONLY_WOULD_TAKE)
RJ_UNKNOWN_ORDER = int(c.BookReject.UNKNOWN_ORDER)
RJ_REPLACE_BELOW_FILLED = int(c.BookReject.REPLACE_BELOW_FILLED)
CR_USER = int(c.CancelReason.USER)
CR_IOC = int(c.CancelReason.IMMEDIATE_OR_CANCEL)
CR_FOK = int(c.CancelReason.FILL_OR_KILL)
CR_SELF = int(c.CancelReason.SELF_TRADE)
CR_MASS = int(c.CancelReason.MASS_CANCEL)
MAKER = int(c.Liquidity.MAKER)
TAKER = int(c.Liquidity.TAKER)
NE = c.N_EVENT_FIELDS


# =========================================================================================
# The arena: layout, growth (from Python) and borrowing (inside compiled code)
# =========================================================================================
def _table_size(order_capacity: int) -> int:
    """Power of two at least twice the pool: the id table stays at most half full."""
    size = 16
    while size < 2 * order_capacity:
        size *= 2
    return size


def _layout(
    orders: int, levels: int, books: int, bitmap_words: int, accounts: int, chunks: int
) -> tuple[np.ndarray, int]:
    """A zeroed arena with the header's region offsets filled in; returns (mem, size)."""
    head = np.zeros(HEADER_WORDS, dtype=np.int64)
    order_table = _table_size(orders)
    level_table = _table_size(levels)
    sizes = [
        (H_ORDERS, orders * OF),
        (H_LEVELS, levels * LF),
        (H_BOOKS, books * BF),
        (H_BITMAPS, bitmap_words),
        (H_IDMAP, order_table * 2),
        (H_LEVELMAP, level_table * 2),
        (H_HEAP, orders),
        (H_ACCOUNTS, accounts),
        (H_CHUNKS, chunks * CHUNK_WORDS),
    ]
    at = HEADER_WORDS
    for key, words in sizes:
        head[key] = at
        at += words
    head[H_ORDER_CAP] = orders
    head[H_LEVEL_CAP] = levels
    head[H_BOOK_CAP] = books
    head[H_BITMAP_CAP] = bitmap_words
    head[H_IDMAP_MASK] = order_table - 1
    head[H_LEVELMAP_MASK] = level_table - 1
    head[H_ACCOUNT_CAP] = accounts
    head[H_CHUNK_CAP] = chunks
    mem = hugepages.zeros(at, np.int64)  # read at random: 2 MiB pages spare the TLB
    mem[::PAGE_WORDS] = 0  # touch every page now, not on the first order that reaches it
    mem[:HEADER_WORDS] = head
    return mem, at


def bitmap_shape(ticks: int) -> tuple[int, int]:
    """(level-2 words, level-1 words) of one side's bitmap over ``ticks`` prices; the side
    takes level 2, level 1 and a chunk directory as long as level 1."""
    w1 = ((ticks + 63) // 64 + 63) // 64
    return (w1 + 63) // 64, w1


# one side's level 2, level 1 and chunk directory at a million prices
BITMAP_TOP_WORDS_1M = sum(bitmap_shape(1 << 20)) + bitmap_shape(1 << 20)[1]


def _chain_chunks(mem: np.ndarray, first: int, last_exclusive: int) -> None:
    chunks = region(mem, H_CHUNKS, int(mem[H_CHUNK_CAP]), CHUNK_WORDS)
    chunks[first:last_exclusive, 0] = np.arange(first + 1, last_exclusive + 1)
    chunks[last_exclusive - 1, 0] = mem[G_FREE_CHUNK]
    mem[G_FREE_CHUNK] = first


def region(mem: np.ndarray, key: int, rows: int, width: int) -> np.ndarray:
    """A (rows, width) view of one region, for Python-side copying and inspection."""
    base = int(mem[key])
    return mem[base : base + rows * width].reshape(rows, width)


def _chain_orders(mem: np.ndarray, first: int, last_exclusive: int) -> None:
    """Put order slots first..last_exclusive-1 at the head of the free list."""
    orders = region(mem, H_ORDERS, int(mem[H_ORDER_CAP]), OF)
    orders[first:last_exclusive, O_NEXT] = np.arange(first + 1, last_exclusive + 1)
    orders[last_exclusive - 1, O_NEXT] = mem[G_FREE_ORDER]
    mem[G_FREE_ORDER] = first


def _chain_levels(mem: np.ndarray, first: int, last_exclusive: int) -> None:
    levels = region(mem, H_LEVELS, int(mem[H_LEVEL_CAP]), LF)
    levels[first:last_exclusive, L_FREE_NEXT] = np.arange(first + 1, last_exclusive + 1)
    levels[first:last_exclusive, L_HEAD] = EMPTY
    levels[first:last_exclusive, L_TAIL] = EMPTY
    levels[last_exclusive - 1, L_FREE_NEXT] = mem[G_FREE_LEVEL]
    mem[G_FREE_LEVEL] = first


def new_state(
    order_capacity: int,
    account_capacity: int,
    instrument_capacity: int,
    max_orders: int,
    max_accounts: int,
) -> BookState:
    """A fresh arena (the book's ``state``).

    Books and bitmap tops are sized for ``instrument_capacity`` instruments of up to a
    million prices, chunks for one each, so that listing them does not copy the arena."""
    chunks = max(64, instrument_capacity)
    mem, _ = _layout(
        order_capacity,
        order_capacity,
        instrument_capacity,
        instrument_capacity * 2 * BITMAP_TOP_WORDS_1M,
        account_capacity,
        chunks,
    )
    mem[G_FREE_ORDER] = EMPTY
    mem[G_FREE_LEVEL] = EMPTY
    mem[G_FREE_CHUNK] = EMPTY
    _chain_chunks(mem, 0, chunks)
    _chain_orders(mem, 0, order_capacity)
    _chain_levels(mem, 0, order_capacity)
    region(mem, H_ACCOUNTS, account_capacity, 1)[:] = EMPTY
    mem[G_MAX_ORDERS] = max_orders
    mem[G_MAX_ACCOUNTS] = max_accounts
    return BookState(mem)


def _regrow(
    state: BookState,
    orders: int | None = None,
    levels: int | None = None,
    books: int | None = None,
    bitmaps: int | None = None,
    accounts: int | None = None,
    chunks: int | None = None,
) -> BookState:
    """Copy the arena into a larger one; only the regions named get bigger."""
    old = state.mem
    o_cap, b_cap = int(old[H_ORDER_CAP]), int(old[H_BOOK_CAP])
    s_cap, a_cap = int(old[H_BITMAP_CAP]), int(old[H_ACCOUNT_CAP])
    l_cap = int(old[H_LEVEL_CAP])
    new_o, new_b = orders or o_cap, books or b_cap
    new_s, new_a, new_l = bitmaps or s_cap, accounts or a_cap, levels or l_cap
    c_cap = int(old[H_CHUNK_CAP])
    new_c = chunks or c_cap
    mem, _ = _layout(new_o, new_l, new_b, new_s, new_a, new_c)
    for key in (*range(G_FREE_ORDER, G_BITMAP_HWM + 1), G_FREE_CHUNK):  # counters
        mem[key] = old[key]
    for key, rows, new_rows, width in (
        (H_ORDERS, o_cap, new_o, OF),
        (H_LEVELS, l_cap, new_l, LF),
        (H_BOOKS, b_cap, new_b, BF),
        (H_BITMAPS, s_cap, new_s, 1),
        (H_HEAP, o_cap, new_o, 1),
        (H_ACCOUNTS, a_cap, new_a, 1),
        (H_CHUNKS, c_cap, new_c, CHUNK_WORDS),
    ):
        region(mem, key, new_rows, width)[:rows] = region(old, key, rows, width)
    region(mem, H_ACCOUNTS, new_a, 1)[a_cap:] = EMPTY
    if new_o > o_cap:
        _chain_orders(mem, o_cap, new_o)
    if new_l > l_cap:
        _chain_levels(mem, l_cap, new_l)
    if new_c > c_cap:
        _chain_chunks(mem, c_cap, new_c)
    _rehash(old, mem)
    return BookState(mem)


def grow_to(state: BookState, orders: int, levels: int, chunks: int) -> BookState:
    """One regrow to at least these capacities (a snapshot load sizes the arena once
    instead of copying it at every doubling); regions already big enough stay."""
    mem = state.mem
    want = {
        "orders": orders if orders > mem[H_ORDER_CAP] else None,
        "levels": levels if levels > mem[H_LEVEL_CAP] else None,
        "chunks": chunks if chunks > mem[H_CHUNK_CAP] else None,
    }
    if all(v is None for v in want.values()):
        return state
    return _regrow(state, **want)


def grow_orders(state: BookState, new_capacity: int) -> BookState:
    """A bigger order pool (and the heap and id table sized with it)."""
    return _regrow(state, orders=new_capacity)


def grow_levels(state: BookState) -> BookState:
    return _regrow(state, levels=2 * int(state.mem[H_LEVEL_CAP]))


def grow_chunks(state: BookState) -> BookState:
    return _regrow(state, chunks=2 * int(state.mem[H_CHUNK_CAP]))


def grow_bitmaps(state: BookState, needed: int) -> BookState:
    size = max(64, int(state.mem[H_BITMAP_CAP]))
    while size < needed:
        size *= 2
    return _regrow(state, bitmaps=size)


def grow_accounts(state: BookState, needed: int) -> BookState:
    size = int(state.mem[H_ACCOUNT_CAP])
    while size < needed:
        size *= 2
    return _regrow(state, accounts=size)


def grow_books(state: BookState, needed: int) -> BookState:
    size = max(1, int(state.mem[H_BOOK_CAP]))
    while size < needed:
        size *= 2
    return _regrow(state, books=size)


def add_book(state: BookState, instrument: int, params: tuple[int, ...]) -> BookState:
    """List an instrument: its book row and its bitmaps' top levels, growing as needed.

    ``params`` is (tick, lot, min price, max price, min qty, max qty, ticks).
    """
    if instrument >= state.mem[H_BOOK_CAP]:
        state = grow_books(state, instrument + 1)
    ticks = params[6]
    w2, w1 = bitmap_shape(ticks)
    words = w2 + 2 * w1  # per side: level 2, level 1, chunk directory
    hwm = int(state.mem[G_BITMAP_HWM])
    if hwm + 2 * words > state.mem[H_BITMAP_CAP]:
        state = grow_bitmaps(state, hwm + 2 * words)
    mem = state.mem
    mem[G_BITMAP_HWM] = hwm + 2 * words
    views = arena_views(state)
    for side_base in (hwm, hwm + words):
        views["bitmaps"][side_base + w2 + w1 : side_base + words, 0] = EMPTY  # no chunks
    row = views["books"][instrument]
    row[:] = 0
    row[B_ACTIVE] = 1
    row[B_TICK : B_TICKS + 1] = params
    row[B_BITMAP : B_BITMAP + 2] = (hwm, hwm + words)
    row[B_BEST : B_BEST + 2] = EMPTY
    row[B_BEST_LEVEL : B_BEST_LEVEL + 2] = EMPTY
    return state


def arena_views(state: BookState) -> dict[str, np.ndarray]:
    """Named 2-D views of every region (tests and the benchmark inspect the pools)."""
    mem = state.mem
    o_cap = int(mem[H_ORDER_CAP])
    return {
        "orders": region(mem, H_ORDERS, o_cap, OF),
        "levels": region(mem, H_LEVELS, int(mem[H_LEVEL_CAP]), LF),
        "books": region(mem, H_BOOKS, int(mem[H_BOOK_CAP]), BF),
        "bitmaps": region(mem, H_BITMAPS, int(mem[H_BITMAP_CAP]), 1),
        "chunks": region(mem, H_CHUNKS, int(mem[H_CHUNK_CAP]), CHUNK_WORDS),
        "idmap": region(mem, H_IDMAP, int(mem[H_IDMAP_MASK]) + 1, 2),
        "levelmap": region(mem, H_LEVELMAP, int(mem[H_LEVELMAP_MASK]) + 1, 2),
        "heap": region(mem, H_HEAP, o_cap, 1),
        "accounts": region(mem, H_ACCOUNTS, int(mem[H_ACCOUNT_CAP]), 1),
    }


@intrinsic
def _address_as_pointer(typingctx, address):
    """An integer address as a void pointer, so ``carray`` can view memory we own."""
    sig = types.voidptr(address)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


@intrinsic
def _prefetch_address(typingctx, address):
    """``llvm.prefetch`` (read, keep in all cache levels): a hint that never faults."""
    sig = types.none(address)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        ptr = builder.inttoptr(args[0], cgutils.voidptr_t)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def prefetch_word(a: np.ndarray, word: int) -> None:
    """Start loading word ``word`` of the C-contiguous int64 array ``a`` into the cache.

    The kernels look a few commands ahead and prefetch what those will read at random
    (hash slots, then the rows they name), so the misses overlap with the work in between
    instead of stalling it one after another. Any index is safe: nothing is read.
    """
    _prefetch_address(a.ctypes.data + word * 8)


@njit(cache=True)
def borrow(a: np.ndarray) -> np.ndarray:
    """A view of the int64 array ``a`` without a reference count, valid while the caller
    holds ``a``. Compiled loops borrow each array once: passing the owned arrays on to
    inlined helpers costs an atomic incref/decref pair per use."""
    return carray(_address_as_pointer(a.ctypes.data), a.shape, np.int64)


# =========================================================================================
# Hash tables (order id -> slot, book side and tick -> level): linear probing with
# backward-shift deletion, keys never 0, at most half full
# =========================================================================================
@njit(cache=True, inline="always")
def _home(key: int, mask: int) -> int:
    h = key * -7046029254386353131
    h ^= h >> 29
    return h & mask


@njit(cache=True, inline="always")
def _find(m: np.ndarray, base: int, mask: int, key: int) -> int:
    i = _home(key, mask)
    while True:
        k = m[base + 2 * i]
        if k == key:
            return m[base + 2 * i + 1]
        if k == 0:
            return EMPTY
        i = (i + 1) & mask


@njit(cache=True, inline="always")
def _insert(m: np.ndarray, base: int, mask: int, key: int, value: int) -> None:
    i = _home(key, mask)
    while m[base + 2 * i] != 0:
        i = (i + 1) & mask
    m[base + 2 * i] = key
    m[base + 2 * i + 1] = value


@njit(cache=True, inline="always")
def _delete(m: np.ndarray, base: int, mask: int, key: int) -> None:
    i = _home(key, mask)
    while m[base + 2 * i] != key:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        k = m[base + 2 * j]
        if k == 0:
            break
        home = _home(k, mask)
        # Entry j may fill the hole at i only if its home is not cyclically in (i, j].
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if not stays:
            m[base + 2 * i] = k
            m[base + 2 * i + 1] = m[base + 2 * j + 1]
            i = j
    m[base + 2 * i] = 0
    m[base + 2 * i + 1] = 0


@njit(cache=True, inline="always")
def _lookup(m: np.ndarray, order_id: int) -> int:
    return _find(m, m[H_IDMAP], m[H_IDMAP_MASK], order_id)


@njit(cache=True, inline="always")
def prefetch_order_slot(m: np.ndarray, order_id: int) -> None:
    """Step one of looking ``order_id`` up ahead of time: load its home slot."""
    prefetch_word(m, m[H_IDMAP] + 2 * _home(order_id, m[H_IDMAP_MASK]))


@njit(cache=True, inline="always")
def prefetch_order_row(m: np.ndarray, order_id: int) -> None:
    """Step two, once the slot is cached: load the order's row (two or three lines), if
    the order sits in its home slot."""
    at = m[H_IDMAP] + 2 * _home(order_id, m[H_IDMAP_MASK])
    if order_id > 0 and m[at] == order_id:
        o = m[H_ORDERS] + m[at + 1] * OF
        prefetch_word(m, o)
        prefetch_word(m, o + OF // 2)
        prefetch_word(m, o + OF - 1)


@njit(cache=True, inline="always")
def _level_slot(m: np.ndarray, instr: int, side: int, price: int) -> tuple[int, int]:
    """(word index of the level map's home slot for a price, its key), or (-1, 0) if the
    order is malformed: the book rejects it later, here it only must not read out of
    bounds."""
    if instr < 0 or instr >= m[H_BOOK_CAP] or (side != BUY and side != SELL):
        return -1, 0
    b = m[H_BOOKS] + instr * BF
    tick = m[b + B_TICK]
    off = price - m[b + B_MIN_PRICE]
    if tick <= 0 or off < 0:
        return -1, 0
    key = _level_key(instr, side - 1, off // tick)
    return m[H_LEVELMAP] + 2 * _home(key, m[H_LEVELMAP_MASK]), key


@njit(cache=True, inline="always")
def prefetch_level_slot(m: np.ndarray, instr: int, side: int, price: int) -> None:
    """Step one of finding an order's price level ahead of time."""
    at, _ = _level_slot(m, instr, side, price)
    if at >= 0:
        prefetch_word(m, at)


@njit(cache=True, inline="always")
def prefetch_level_row(m: np.ndarray, instr: int, side: int, price: int) -> None:
    """Step two: the level's row, if the level sits in its home slot."""
    at, key = _level_slot(m, instr, side, price)
    if at >= 0 and m[at] == key:
        lrow = m[H_LEVELS] + m[at + 1] * LF
        prefetch_word(m, lrow)
        prefetch_word(m, lrow + LF - 1)


@njit(cache=True)
def _rehash(old: np.ndarray, new: np.ndarray) -> None:
    for table, mask in ((H_IDMAP, H_IDMAP_MASK), (H_LEVELMAP, H_LEVELMAP_MASK)):
        base = old[table]
        for i in range(old[mask] + 1):
            key = old[base + 2 * i]
            if key != 0:
                _insert(new, new[table], new[mask], key, old[base + 2 * i + 1])


# =========================================================================================
# GTD heap keyed by (expire_ts, order id); each order knows its heap position
# =========================================================================================
@njit(cache=True)
def _heap_less(m: np.ndarray, a: int, b: int) -> bool:
    oa = m[H_ORDERS] + a * OF
    ob = m[H_ORDERS] + b * OF
    ea = m[oa + O_EXPIRE]
    eb = m[ob + O_EXPIRE]
    return ea < eb or (ea == eb and m[oa + O_ID] < m[ob + O_ID])


@njit(cache=True)
def _heap_place(m: np.ndarray, pos: int, slot: int) -> None:
    m[m[H_HEAP] + pos] = slot
    m[m[H_ORDERS] + slot * OF + O_HEAP_POS] = pos


@njit(cache=True)
def _heap_sift_up(m: np.ndarray, pos: int) -> None:
    hb = m[H_HEAP]
    slot = m[hb + pos]
    while pos > 0:
        parent = (pos - 1) >> 1
        p = m[hb + parent]
        if not _heap_less(m, slot, p):
            break
        _heap_place(m, pos, p)
        pos = parent
    _heap_place(m, pos, slot)


@njit(cache=True)
def _heap_sift_down(m: np.ndarray, n: int, pos: int) -> None:
    hb = m[H_HEAP]
    slot = m[hb + pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and _heap_less(m, m[hb + child + 1], m[hb + child]):
            child += 1
        ch = m[hb + child]
        if not _heap_less(m, ch, slot):
            break
        _heap_place(m, pos, ch)
        pos = child
    _heap_place(m, pos, slot)


@njit(cache=True, inline="always")
def _heap_push(m: np.ndarray, slot: int) -> None:
    n = m[G_HEAP_N]
    m[m[H_HEAP] + n] = slot
    m[G_HEAP_N] = n + 1
    _heap_sift_up(m, n)


@njit(cache=True, inline="always")
def _heap_remove(m: np.ndarray, slot: int) -> None:
    hb = m[H_HEAP]
    pos = m[m[H_ORDERS] + slot * OF + O_HEAP_POS]
    n = m[G_HEAP_N] - 1
    m[G_HEAP_N] = n
    if pos == n:
        return
    last = m[hb + n]
    _heap_place(m, pos, last)
    if pos > 0 and _heap_less(m, last, m[hb + ((pos - 1) >> 1)]):
        _heap_sift_up(m, pos)
    else:
        _heap_sift_down(m, n, pos)


# =========================================================================================
# Price levels: a hash table finds a level by tick, a three-level bitmap per book side
# finds the next one, and each side remembers its best
# =========================================================================================
@intrinsic
def _clz(typingctx, x):
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@intrinsic
def _ctz(typingctx, x):
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@njit(cache=True, inline="always")
def _bm_levels(m: np.ndarray, b: int, s: int) -> tuple:
    """(level-2 base, level-1 base, chunk directory base, level-2 words) of one side."""
    ticks = m[b + B_TICKS]
    w1 = (((ticks + 63) >> 6) + 63) >> 6
    w2 = (w1 + 63) >> 6
    l2 = m[H_BITMAPS] + m[b + B_BITMAP + s]
    return l2, l2 + w2, l2 + w2 + w1, w2


@njit(cache=True, inline="always")
def _l0(m: np.ndarray, d: int, i1: int) -> int:
    """Base of the level-0 words of tick group ``i1`` (its chunk), or -1 if it has none."""
    chunk = m[d + i1]
    return -1 if chunk < 0 else m[H_CHUNKS] + chunk * CHUNK_WORDS


@njit(cache=True, inline="always")
def _bm_set(m: np.ndarray, b: int, s: int, t: int) -> None:
    l2, l1, d, _ = _bm_levels(m, b, s)
    i0 = t >> 6
    i1 = i0 >> 6
    base = _l0(m, d, i1)
    if base < 0:  # first level in these 4,096 ticks: take a chunk (run_batch checked)
        chunk = m[G_FREE_CHUNK]
        base = m[H_CHUNKS] + chunk * CHUNK_WORDS
        m[G_FREE_CHUNK] = m[base]
        for j in range(CHUNK_WORDS):
            m[base + j] = 0
        m[d + i1] = chunk
    word = m[base + (i0 & 63)]
    m[base + (i0 & 63)] = word | (1 << (t & 63))
    if word == 0:
        word = m[l1 + i1]
        m[l1 + i1] = word | (1 << (i0 & 63))
        if word == 0:
            m[l2 + (i1 >> 6)] |= 1 << (i1 & 63)


@njit(cache=True, inline="always")
def _bm_clear(m: np.ndarray, b: int, s: int, t: int) -> None:
    l2, l1, d, _ = _bm_levels(m, b, s)
    i0 = t >> 6
    i1 = i0 >> 6
    base = _l0(m, d, i1)
    word = m[base + (i0 & 63)] & ~(1 << (t & 63))
    m[base + (i0 & 63)] = word
    if word == 0:
        word = m[l1 + i1] & ~(1 << (i0 & 63))
        m[l1 + i1] = word
        if word == 0:  # the chunk is empty: give it back
            m[l2 + (i1 >> 6)] &= ~(1 << (i1 & 63))
            m[base] = m[G_FREE_CHUNK]
            m[G_FREE_CHUNK] = m[d + i1]
            m[d + i1] = -1


@njit(cache=True)
def _bm_prev(m: np.ndarray, b: int, s: int, t: int) -> int:
    """Highest marked tick <= t, or -1."""
    if t < 0:
        return -1
    l2, l1, d, _ = _bm_levels(m, b, s)
    i0 = t >> 6
    i1 = i0 >> 6
    base = _l0(m, d, i1)
    if base >= 0:
        w = m[base + (i0 & 63)] & ~(-2 << (t & 63))
        if w != 0:
            return (i0 << 6) + 63 - _clz(w)
    w = m[l1 + i1] & ~(-1 << (i0 & 63))
    if w == 0:
        i2 = i1 >> 6
        w = m[l2 + i2] & ~(-1 << (i1 & 63))
        while w == 0:
            i2 -= 1
            if i2 < 0:
                return -1
            w = m[l2 + i2]
        i1 = (i2 << 6) + 63 - _clz(w)
        w = m[l1 + i1]
    i0 = (i1 << 6) + 63 - _clz(w)
    return (i0 << 6) + 63 - _clz(m[_l0(m, d, i1) + (i0 & 63)])


@njit(cache=True)
def _bm_next(m: np.ndarray, b: int, s: int, t: int) -> int:
    """Lowest marked tick >= t, or -1."""
    if t >= m[b + B_TICKS]:
        return -1
    l2, l1, d, w2 = _bm_levels(m, b, s)
    i0 = t >> 6
    i1 = i0 >> 6
    base = _l0(m, d, i1)
    if base >= 0:
        w = m[base + (i0 & 63)] & (-1 << (t & 63))
        if w != 0:
            return (i0 << 6) + _ctz(w)
    w = m[l1 + i1] & (-2 << (i0 & 63))
    if w == 0:
        i2 = i1 >> 6
        w = m[l2 + i2] & (-2 << (i1 & 63))
        while w == 0:
            i2 += 1
            if i2 >= w2:
                return -1
            w = m[l2 + i2]
        i1 = (i2 << 6) + _ctz(w)
        w = m[l1 + i1]
    i0 = (i1 << 6) + _ctz(w)
    return (i0 << 6) + _ctz(m[_l0(m, d, i1) + (i0 & 63)])


@njit(cache=True)
def _worse_tick(m: np.ndarray, b: int, s: int, t: int) -> int:
    """The next level behind tick ``t`` on side ``s`` (lower bids, higher asks), or -1."""
    if s == 0:
        return _bm_prev(m, b, s, t - 1)
    return _bm_next(m, b, s, t + 1)


@njit(cache=True, inline="always")
def _per_unit(value: int, unit: int) -> int:
    """``value // unit``, skipping the division for the common unit of 1 (it is slow)."""
    return value if unit == 1 else value // unit


@njit(cache=True, inline="always")
def _is_multiple(value: int, unit: int) -> bool:
    return unit == 1 or value % unit == 0


@njit(cache=True, inline="always")
def _level_key(instr: int, s: int, t: int) -> int:
    return ((instr * 2 + s) << TICK_BITS) + t + 1


@njit(cache=True, inline="always")
def _level_at(m: np.ndarray, instr: int, s: int, t: int) -> int:
    return _find(m, m[H_LEVELMAP], m[H_LEVELMAP_MASK], _level_key(instr, s, t))


@njit(cache=True)
def _find_level(m: np.ndarray, instr: int, side: int, price: int) -> int:
    b = m[H_BOOKS] + instr * BF
    off = price - m[b + B_MIN_PRICE]
    if off < 0 or price > m[b + B_MAX_PRICE] or off % m[b + B_TICK] != 0:
        return EMPTY
    return _level_at(m, instr, side - 1, off // m[b + B_TICK])


@njit(cache=True, inline="always")
def _level_for_insert(m: np.ndarray, instr: int, side: int, price: int) -> int:
    """The level at ``price``, created if missing (the caller checked one is free)."""
    s = side - 1
    b = m[H_BOOKS] + instr * BF
    t = _per_unit(price - m[b + B_MIN_PRICE], m[b + B_TICK])
    key = _level_key(instr, s, t)
    lvl = _find(m, m[H_LEVELMAP], m[H_LEVELMAP_MASK], key)
    if lvl != EMPTY:
        return lvl
    lvl = m[G_FREE_LEVEL]
    lrow = m[H_LEVELS] + lvl * LF
    m[G_FREE_LEVEL] = m[lrow + L_FREE_NEXT]
    m[lrow + L_PRICE] = price
    m[lrow + L_HEAD] = EMPTY
    m[lrow + L_TAIL] = EMPTY
    m[lrow + L_VISIBLE] = 0
    m[lrow + L_COUNT] = 0
    m[lrow + L_TICK] = t
    _insert(m, m[H_LEVELMAP], m[H_LEVELMAP_MASK], key, lvl)
    _bm_set(m, b, s, t)
    best = m[b + B_BEST + s]
    if best < 0 or (t > best if s == 0 else t < best):
        m[b + B_BEST + s] = t
        m[b + B_BEST_LEVEL + s] = lvl
    return lvl


@njit(cache=True, inline="always")
def _level_emptied(m: np.ndarray, instr: int, side: int, lvl: int) -> None:
    """A level lost its last order: unmark it, free it, and find the next best if needed."""
    s = side - 1
    b = m[H_BOOKS] + instr * BF
    lrow = m[H_LEVELS] + lvl * LF
    t = m[lrow + L_TICK]
    _delete(m, m[H_LEVELMAP], m[H_LEVELMAP_MASK], _level_key(instr, s, t))
    _bm_clear(m, b, s, t)
    m[lrow + L_HEAD] = EMPTY
    m[lrow + L_TAIL] = EMPTY
    m[lrow + L_COUNT] = 0
    m[lrow + L_FREE_NEXT] = m[G_FREE_LEVEL]
    m[G_FREE_LEVEL] = lvl
    if m[b + B_BEST + s] == t:
        nt = _worse_tick(m, b, s, t)
        m[b + B_BEST + s] = nt
        m[b + B_BEST_LEVEL + s] = EMPTY if nt < 0 else _level_at(m, instr, s, nt)


@njit(cache=True, inline="always")
def _best_level(m: np.ndarray, instr: int, s: int) -> int:
    """Best level of side index ``s`` (0 bids, 1 asks), or EMPTY."""
    return m[m[H_BOOKS] + instr * BF + B_BEST_LEVEL + s]


# =========================================================================================
# Packed order fields: what matching reads together shares a word
# =========================================================================================
@njit(cache=True, inline="always")
def _pack_meta(instr: int, side: int, tif: int, stp: int, post_only: int) -> int:
    return instr | (side << 20) | (tif << 22) | (stp << 25) | (post_only << 27)


@njit(cache=True, inline="always")
def instrument_of(m: np.ndarray, o: int) -> int:
    """The instrument of the order row at word ``o`` (``m[H_ORDERS] + slot * OF``)."""
    return m[o + O_META] & 0xFFFFF


@njit(cache=True, inline="always")
def side_of(m: np.ndarray, o: int) -> int:
    """The side (``Side``) of the order row at word ``o``."""
    return (m[o + O_META] >> 20) & 3


@njit(cache=True, inline="always")
def _tif_of(m: np.ndarray, o: int) -> int:
    return (m[o + O_META] >> 22) & 7


@njit(cache=True, inline="always")
def _stp_of(m: np.ndarray, o: int) -> int:
    return (m[o + O_META] >> 25) & 3


@njit(cache=True, inline="always")
def _post_only_of(m: np.ndarray, o: int) -> int:
    return (m[o + O_META] >> 27) & 1


# =========================================================================================
# Orders in levels and in the indexes
# =========================================================================================
@njit(cache=True, inline="always")
def _append(m: np.ndarray, lvl: int, slot: int) -> None:
    ob = m[H_ORDERS]
    lrow = m[H_LEVELS] + lvl * LF
    o = ob + slot * OF
    tail = m[lrow + L_TAIL]
    m[o + O_PREV] = tail
    m[o + O_NEXT] = EMPTY
    if tail == EMPTY:
        m[lrow + L_HEAD] = slot
    else:
        m[ob + tail * OF + O_NEXT] = slot
    m[lrow + L_TAIL] = slot
    m[o + O_LEVEL] = lvl


@njit(cache=True, inline="always")
def _unlink(m: np.ndarray, lvl: int, slot: int) -> None:
    ob = m[H_ORDERS]
    lrow = m[H_LEVELS] + lvl * LF
    o = ob + slot * OF
    prev = m[o + O_PREV]
    nxt = m[o + O_NEXT]
    if prev == EMPTY:
        m[lrow + L_HEAD] = nxt
    else:
        m[ob + prev * OF + O_NEXT] = nxt
    if nxt == EMPTY:
        m[lrow + L_TAIL] = prev
    else:
        m[ob + nxt * OF + O_PREV] = prev


@njit(cache=True, inline="always")
def _rest(m: np.ndarray, slot: int) -> None:
    """Put ``slot`` at the back of its price level."""
    o = m[H_ORDERS] + slot * OF
    lvl = _level_for_insert(m, instrument_of(m, o), side_of(m, o), m[o + O_PRICE])
    _append(m, lvl, slot)
    lrow = m[H_LEVELS] + lvl * LF
    m[lrow + L_COUNT] += 1
    m[lrow + L_VISIBLE] += m[o + O_SHOWN]
    _add_weight(m, o, _weight(m, o))


@njit(cache=True, inline="always")
def _leave_level(m: np.ndarray, slot: int) -> None:
    """Take ``slot`` out of its level, dropping the level when it empties."""
    o = m[H_ORDERS] + slot * OF
    lvl = m[o + O_LEVEL]
    lrow = m[H_LEVELS] + lvl * LF
    _unlink(m, lvl, slot)
    m[lrow + L_VISIBLE] -= m[o + O_SHOWN]
    m[lrow + L_COUNT] -= 1
    _add_weight(m, o, -_weight(m, o))
    if m[lrow + L_COUNT] == 0:
        _level_emptied(m, instrument_of(m, o), side_of(m, o), lvl)


@njit(cache=True, inline="always")
def _index(m: np.ndarray, slot: int) -> None:
    ob = m[H_ORDERS]
    o = ob + slot * OF
    _insert(m, m[H_IDMAP], m[H_IDMAP_MASK], m[o + O_ID], slot)
    a = m[H_ACCOUNTS] + m[o + O_ACCOUNT]
    head = m[a]
    m[o + O_ANEXT] = head
    m[o + O_APREV] = EMPTY
    if head != EMPTY:
        m[ob + head * OF + O_APREV] = slot
    m[a] = slot
    if _tif_of(m, o) == GTD:
        _heap_push(m, slot)
    m[G_LIVE] += 1


@njit(cache=True, inline="always")
def _unindex_and_free(m: np.ndarray, slot: int) -> None:
    ob = m[H_ORDERS]
    o = ob + slot * OF
    _delete(m, m[H_IDMAP], m[H_IDMAP_MASK], m[o + O_ID])
    prev = m[o + O_APREV]
    nxt = m[o + O_ANEXT]
    if prev == EMPTY:
        m[m[H_ACCOUNTS] + m[o + O_ACCOUNT]] = nxt
    else:
        m[ob + prev * OF + O_ANEXT] = nxt
    if nxt != EMPTY:
        m[ob + nxt * OF + O_APREV] = prev
    if _tif_of(m, o) == GTD:
        _heap_remove(m, slot)
    m[G_LIVE] -= 1
    m[o + O_NEXT] = m[G_FREE_ORDER]
    m[G_FREE_ORDER] = slot


@njit(cache=True, inline="always")
def _remove(m: np.ndarray, slot: int) -> None:
    _leave_level(m, slot)
    _unindex_and_free(m, slot)


@njit(cache=True, inline="always")
def _weight(m: np.ndarray, o: int) -> int:
    """Most times one taker can meet this resting order: once per displayed slice."""
    display = m[o + O_DISPLAY]
    if display == 0:
        return 1
    return 1 + (m[o + O_HIDDEN] + display - 1) // display


@njit(cache=True, inline="always")
def _add_weight(m: np.ndarray, o: int, delta: int) -> None:
    m[m[H_BOOKS] + instrument_of(m, o) * BF + B_WEIGHT + side_of(m, o) - 1] += delta


# =========================================================================================
# Events
# =========================================================================================
@njit(cache=True, inline="always")
def _put(
    ev: np.ndarray,
    n: int,
    seq: int,
    kind: int,
    instr: int,
    oid: int,
    acct: int,
    side: int,
    price: int,
    qty: int,
    leaves: int,
    shown: int,
    trade_id: int,
    liq: int,
    reason: int,
    contra_oid: int,
    contra_acct: int,
) -> int:
    ev[n, 0] = seq
    ev[n, 1] = kind
    ev[n, 2] = instr
    ev[n, 3] = oid
    ev[n, 4] = acct
    ev[n, 5] = side
    ev[n, 6] = price
    ev[n, 7] = qty
    ev[n, 8] = leaves
    ev[n, 9] = shown
    ev[n, 10] = trade_id
    ev[n, 11] = liq
    ev[n, 12] = reason
    ev[n, 13] = contra_oid
    ev[n, 14] = contra_acct
    return n + 1


@njit(cache=True, inline="always")
def _order_event(ev, n, seq, kind, m, slot, qty, leaves, shown, reason):
    """One event about a resting (or just removed) order, read from its row."""
    o = m[H_ORDERS] + slot * OF
    return _put(
        ev,
        n,
        seq,
        kind,
        instrument_of(m, o),
        m[o + O_ID],
        m[o + O_ACCOUNT],
        side_of(m, o),
        m[o + O_PRICE],
        qty,
        leaves,
        shown,
        0,
        0,
        reason,
        0,
        0,
    )


# =========================================================================================
# Matching
# =========================================================================================
@njit(cache=True, inline="always")
def _crosses(side: int, limit: int, price: int) -> bool:
    return price <= limit if side == BUY else price >= limit


@njit(cache=True)
def _fok_fillable(m, instr, side, limit, acct, stp, need) -> bool:
    ob = m[H_ORDERS]
    lb = m[H_LEVELS]
    s = 2 - side  # the opposite side index
    b = m[H_BOOKS] + instr * BF
    t = m[b + B_BEST + s]
    while t >= 0:
        lrow = lb + _level_at(m, instr, s, t) * LF
        if not _crosses(side, limit, m[lrow + L_PRICE]):
            return False
        slot = m[lrow + L_HEAD]
        while slot != EMPTY:
            o = ob + slot * OF
            if m[o + O_ACCOUNT] == acct:
                if stp != STP_OLDEST:
                    return False
            else:
                need -= m[o + O_SHOWN] + m[o + O_HIDDEN]
            slot = m[o + O_NEXT]
        if need <= 0:
            return True
        t = _worse_tick(m, b, s, t)
    return False


@njit(cache=True)
def _would_take(m, instr, side, price) -> bool:
    lvl = _best_level(m, instr, 2 - side)
    if lvl == EMPTY:
        return False
    return _crosses(side, price, m[m[H_LEVELS] + lvl * LF + L_PRICE])


@njit(cache=True, inline="always")
def _take(m, ev, n, seq, instr, side, limit, oid, acct, stp, leaves, filled, qty):
    """Trade a taker against the opposite side.

    Returns ``(n, leaves, filled, qty, alive)``; ``alive`` is False when self-trade
    prevention cancelled the taker. ``run_batch`` has checked that ``ev`` has room.
    """
    ob = m[H_ORDERS]
    lb = m[H_LEVELS]
    while leaves > 0:
        lvl = _best_level(m, instr, 2 - side)
        if lvl == EMPTY:
            break
        lrow = lb + lvl * LF
        price = m[lrow + L_PRICE]
        if not _crosses(side, limit, price):
            break
        while leaves > 0:
            mk = m[lrow + L_HEAD]
            if mk == EMPTY:
                break  # the level emptied and was dropped
            o = ob + mk * OF
            if m[o + O_ACCOUNT] == acct:
                m_leaves = m[o + O_SHOWN] + m[o + O_HIDDEN]
                if stp == STP_OLDEST or stp == STP_BOTH:
                    _remove(m, mk)
                    n = _order_event(ev, n, seq, EV_CANCELLED, m, mk, m_leaves, 0, 0, CR_SELF)
                    if stp == STP_OLDEST:
                        continue
                if stp == STP_NEWEST or stp == STP_BOTH:
                    n = _put(ev, n, seq, EV_CANCELLED, instr, oid, acct, side, limit, leaves,
                             0, 0, 0, 0, CR_SELF, 0, 0)  # fmt: skip
                    return n, 0, filled, qty, False
                # decrement and cancel: both shrink by the smaller size, hidden first
                dec = min(leaves, m_leaves)
                from_hidden = min(m[o + O_HIDDEN], dec)
                _add_weight(m, o, -_weight(m, o))
                m[o + O_HIDDEN] -= from_hidden
                m[o + O_SHOWN] -= dec - from_hidden
                m[o + O_QTY] -= dec
                m[lrow + L_VISIBLE] -= dec - from_hidden
                _add_weight(m, o, _weight(m, o))
                m_left = m_leaves - dec
                m_shown = m[o + O_SHOWN]
                if m_left == 0:
                    _remove(m, mk)
                n = _order_event(ev, n, seq, EV_CANCELLED, m, mk, dec, m_left, m_shown, CR_SELF)
                leaves -= dec
                qty -= dec
                n = _put(ev, n, seq, EV_CANCELLED, instr, oid, acct, side, limit, dec, leaves,
                         0, 0, 0, CR_SELF, 0, 0)  # fmt: skip
                if leaves == 0:
                    return n, 0, filled, qty, False
                continue
            m_shown = m[o + O_SHOWN]
            q = leaves if leaves < m_shown else m_shown
            tid = m[G_TRADE_ID] + 1
            m[G_TRADE_ID] = tid
            m_shown -= q
            m[o + O_FILLED] += q
            m[lrow + L_VISIBLE] -= q
            leaves -= q
            filled += q
            m_hidden = m[o + O_HIDDEN]
            if m_shown == 0 and m_hidden > 0:
                refill = min(m[o + O_DISPLAY], m_hidden)
                _add_weight(m, o, -_weight(m, o))
                m_hidden -= refill
                m_shown = refill
                m[o + O_HIDDEN] = m_hidden
                _add_weight(m, o, _weight(m, o))
                m[lrow + L_VISIBLE] += refill
                if m[lrow + L_TAIL] != mk:  # a refill goes to the back of the level
                    _unlink(m, lvl, mk)
                    _append(m, lvl, mk)
            m[o + O_SHOWN] = m_shown
            m_id = m[o + O_ID]
            m_acct = m[o + O_ACCOUNT]
            n = _put(ev, n, seq, EV_FILLED, instr, m_id, m_acct, 3 - side, price, q,
                     m_shown + m_hidden, m_shown, tid, MAKER, 0, oid, acct)  # fmt: skip
            n = _put(ev, n, seq, EV_FILLED, instr, oid, acct, side, price, q, leaves, 0, tid,
                     TAKER, 0, m_id, m_acct)  # fmt: skip
            if m_shown == 0:
                _remove(m, mk)
    return n, leaves, filled, qty, True


# =========================================================================================
# Commands
# =========================================================================================
@njit(cache=True, inline="always")
def validate_new(m, cmds, i) -> int:
    """The book's verdict on NEW_ORDER row ``cmds[i]``: ``RJ_OK`` (0) or the first reject
    code, in the order ``matching.reference`` checks them. Pure: it changes nothing, so a
    caller may run its own checks after it and then hand the order to ``run_batch`` with
    ``validated=True``, provided nothing changed the arena in between."""
    instr = cmds[i, c.C_INSTRUMENT]
    if instr < 0 or instr >= m[H_BOOK_CAP]:
        return RJ_UNKNOWN_INSTRUMENT
    b = m[H_BOOKS] + instr * BF
    if m[b + B_ACTIVE] == 0:
        return RJ_UNKNOWN_INSTRUMENT
    acct = cmds[i, c.C_ACCOUNT]
    if acct < 0 or acct >= m[G_MAX_ACCOUNTS]:
        return RJ_INVALID_ACCOUNT
    oid = cmds[i, c.C_ORDER_ID]
    if oid <= 0:
        return RJ_INVALID_ORDER_ID
    side = cmds[i, c.C_SIDE]
    if side != BUY and side != SELL:
        return RJ_INVALID_SIDE
    otype = cmds[i, c.C_ORDER_TYPE]
    if otype != LIMIT and otype != MARKET:
        return RJ_INVALID_ORDER_TYPE
    tif = cmds[i, c.C_TIF]
    resting = tif == GTC or tif == GTD
    if tif < GTC or tif > GTD or (otype == MARKET and resting):
        return RJ_INVALID_TIME_IN_FORCE
    stp = cmds[i, c.C_STP]
    if stp < STP_NEWEST or stp > STP_DECREMENT:
        return RJ_INVALID_STP_MODE
    post_only = cmds[i, c.C_POST_ONLY]
    if post_only != 0 and post_only != 1:
        return RJ_INVALID_POST_ONLY
    if post_only == 1 and (not resting or otype == MARKET):
        return RJ_INVALID_POST_ONLY
    code = check_price_qty(m, b, cmds[i, c.C_PRICE], cmds[i, c.C_QTY])
    if code != RJ_OK:
        return code
    qty = cmds[i, c.C_QTY]
    display = cmds[i, c.C_DISPLAY_QTY]
    if display < 0 or display > qty or not _is_multiple(display, m[b + B_LOT]):
        return RJ_INVALID_DISPLAY_QUANTITY
    if display > 0 and not resting:
        return RJ_INVALID_DISPLAY_QUANTITY
    expire = cmds[i, c.C_EXPIRE_TS]
    if (tif == GTD and expire <= m[G_NOW]) or (tif != GTD and expire != 0):
        return RJ_INVALID_EXPIRE_TIME
    if _lookup(m, oid) != EMPTY:
        return RJ_DUPLICATE_ORDER_ID
    if resting and m[G_LIVE] >= m[G_MAX_ORDERS]:
        return RJ_ORDER_POOL_FULL
    if post_only == 1 and _would_take(m, instr, side, cmds[i, c.C_PRICE]):
        return RJ_POST_ONLY_WOULD_TAKE
    return RJ_OK


@njit(cache=True, inline="always")
def check_price_qty(m, b, price, qty) -> int:
    """``RJ_OK`` or why ``price``/``qty`` do not fit the book row at word ``b``
    (``m[H_BOOKS] + instrument * BF``): range first, then tick, then lot. Pure."""
    if price < m[b + B_MIN_PRICE] or price > m[b + B_MAX_PRICE]:
        return RJ_PRICE_OUT_OF_RANGE
    if not _is_multiple(price, m[b + B_TICK]):
        return RJ_PRICE_OFF_TICK
    if qty < m[b + B_MIN_QTY] or qty > m[b + B_MAX_QTY]:
        return RJ_QUANTITY_OUT_OF_RANGE
    if not _is_multiple(qty, m[b + B_LOT]):
        return RJ_QUANTITY_OFF_LOT
    return RJ_OK


@njit(cache=True, inline="always")
def _new_order_enter(m, cmds, i, ev, n, validated):
    """Validate (unless the caller just did) and acknowledge a new order. Returns
    ``(n, whether it goes on to trade)``."""
    seq = cmds[i, c.C_SEQ]
    instr = cmds[i, c.C_INSTRUMENT]
    oid = cmds[i, c.C_ORDER_ID]
    acct = cmds[i, c.C_ACCOUNT]
    side = cmds[i, c.C_SIDE]
    price = cmds[i, c.C_PRICE]
    qty = cmds[i, c.C_QTY]
    code = RJ_OK if validated else validate_new(m, cmds, i)
    if code != RJ_OK:
        n = _put(ev, n, seq, EV_REJECTED, instr, oid, acct, side, price, qty, 0, 0, 0, 0,
                 code, 0, 0)  # fmt: skip
        return n, False
    display = cmds[i, c.C_DISPLAY_QTY]
    shown = display if 0 < display < qty else qty  # what the order will show if it rests
    n = _put(ev, n, seq, EV_ACCEPTED, instr, oid, acct, side, price, qty, qty, shown, 0, 0, 0,
             0, 0)  # fmt: skip
    if cmds[i, c.C_TIF] == FOK and not _fok_fillable(
        m, instr, side, price, acct, cmds[i, c.C_STP], qty
    ):
        n = _put(ev, n, seq, EV_CANCELLED, instr, oid, acct, side, price, qty, 0, 0, 0, 0,
                 CR_FOK, 0, 0)  # fmt: skip
        return n, False
    return n, True


@njit(cache=True, inline="always")
def _new_order_finish(m, cmds, i, ev, n, leaves, filled, qty, alive):
    """After trading: rest what is left of a GTC/GTD order, cancel it for IOC/FOK/market."""
    if not alive or leaves == 0:
        return n
    tif = cmds[i, c.C_TIF]
    if tif != GTC and tif != GTD:
        return _put(ev, n, cmds[i, c.C_SEQ], EV_CANCELLED, cmds[i, c.C_INSTRUMENT],
                    cmds[i, c.C_ORDER_ID], cmds[i, c.C_ACCOUNT], cmds[i, c.C_SIDE],
                    cmds[i, c.C_PRICE], leaves, 0, 0, 0, 0, CR_IOC, 0, 0)  # fmt: skip
    slot = m[G_FREE_ORDER]
    o = m[H_ORDERS] + slot * OF
    m[G_FREE_ORDER] = m[o + O_NEXT]
    display = cmds[i, c.C_DISPLAY_QTY]
    shown = min(display, leaves) if display > 0 else leaves
    m[o + O_ID] = cmds[i, c.C_ORDER_ID]
    m[o + O_ACCOUNT] = cmds[i, c.C_ACCOUNT]
    m[o + O_SHOWN] = shown
    m[o + O_HIDDEN] = leaves - shown
    m[o + O_FILLED] = filled
    m[o + O_QTY] = qty
    m[o + O_PRICE] = cmds[i, c.C_PRICE]
    m[o + O_META] = _pack_meta(
        cmds[i, c.C_INSTRUMENT], cmds[i, c.C_SIDE], tif, cmds[i, c.C_STP], cmds[i, c.C_POST_ONLY]
    )
    m[o + O_DISPLAY] = display
    m[o + O_EXPIRE] = cmds[i, c.C_EXPIRE_TS]
    _rest(m, slot)
    _index(m, slot)
    return n


@njit(cache=True, inline="always")
def owned_slot(m, cmds, i) -> int:
    """The slot of the resting order ``cmds[i]`` names, if it rests on the row's instrument
    under the row's account; else ``EMPTY``. What cancel and replace act on. Pure."""
    oid = cmds[i, c.C_ORDER_ID]
    if oid <= 0:
        return EMPTY
    slot = _lookup(m, oid)
    if slot == EMPTY:
        return EMPTY
    o = m[H_ORDERS] + slot * OF
    if m[o + O_ACCOUNT] != cmds[i, c.C_ACCOUNT] or instrument_of(m, o) != cmds[i, c.C_INSTRUMENT]:
        return EMPTY
    return slot


@njit(cache=True, inline="always")
def _command_reject(ev, n, cmds, i, code):
    return _put(ev, n, cmds[i, c.C_SEQ], EV_CMD_REJECTED, cmds[i, c.C_INSTRUMENT],
             cmds[i, c.C_ORDER_ID], cmds[i, c.C_ACCOUNT], 0, cmds[i, c.C_PRICE],
             cmds[i, c.C_QTY], 0, 0, 0, 0, code, 0, 0)  # fmt: skip


@njit(cache=True, inline="always")
def _cancel(m, cmds, i, ev, n, slot):
    if slot == EMPTY:
        return _command_reject(ev, n, cmds, i, RJ_UNKNOWN_ORDER)
    o = m[H_ORDERS] + slot * OF
    leaves = m[o + O_SHOWN] + m[o + O_HIDDEN]
    _remove(m, slot)
    return _order_event(ev, n, cmds[i, c.C_SEQ], EV_CANCELLED, m, slot, leaves, 0, 0, CR_USER)


@njit(cache=True, inline="always")
def _replace_enter(m, cmds, i, ev, n, slot):
    """Validate a replace; apply it in place if it keeps priority, else take the order out
    of its level at its new price. Returns ``(n, whether it goes on to trade)``."""
    if slot == EMPTY:
        return _command_reject(ev, n, cmds, i, RJ_UNKNOWN_ORDER), False
    o = m[H_ORDERS] + slot * OF
    instr = instrument_of(m, o)
    side = side_of(m, o)
    price = cmds[i, c.C_PRICE]
    qty = cmds[i, c.C_QTY]
    filled = m[o + O_FILLED]
    code = check_price_qty(m, m[H_BOOKS] + instr * BF, price, qty)
    if code == RJ_OK and qty <= filled:
        code = RJ_REPLACE_BELOW_FILLED
    if code == RJ_OK and _post_only_of(m, o) == 1 and _would_take(m, instr, side, price):
        code = RJ_POST_ONLY_WOULD_TAKE
    if code != RJ_OK:
        return _command_reject(ev, n, cmds, i, code), False
    seq = cmds[i, c.C_SEQ]
    shown = m[o + O_SHOWN]
    hidden = m[o + O_HIDDEN]
    new_leaves = qty - filled
    if price == m[o + O_PRICE] and new_leaves <= shown + hidden:
        cut = shown + hidden - new_leaves  # keeps time priority; hidden quantity goes first
        from_hidden = min(hidden, cut)
        _add_weight(m, o, -_weight(m, o))
        m[o + O_HIDDEN] = hidden - from_hidden
        m[o + O_SHOWN] = shown - (cut - from_hidden)
        _add_weight(m, o, _weight(m, o))
        m[o + O_QTY] = qty
        m[m[H_LEVELS] + m[o + O_LEVEL] * LF + L_VISIBLE] -= cut - from_hidden
        n = _order_event(ev, n, seq, EV_REPLACED, m, slot, qty, new_leaves, m[o + O_SHOWN], 0)
        return n, False
    _leave_level(m, slot)
    m[o + O_PRICE] = price
    return _order_event(ev, n, seq, EV_REPLACED, m, slot, qty, new_leaves, 0, 0), True


@njit(cache=True, inline="always")
def _replace_finish(m, slot, leaves, filled, qty, alive) -> None:
    """After trading: rest the replaced order with its new quantity, or let it go."""
    o = m[H_ORDERS] + slot * OF
    if not alive or leaves == 0:
        m[o + O_SHOWN] = 0
        m[o + O_HIDDEN] = 0
        _unindex_and_free(m, slot)
        return
    display = m[o + O_DISPLAY]
    shown = min(display, leaves) if display > 0 else leaves
    m[o + O_SHOWN] = shown
    m[o + O_HIDDEN] = leaves - shown
    m[o + O_FILLED] = filled
    m[o + O_QTY] = qty
    _rest(m, slot)


@njit(cache=True)
def _account_orders(m, acct, instr) -> int:
    """How many resting orders ``acct`` has (on ``instr``, or anywhere for -1)."""
    if acct < 0 or acct >= m[H_ACCOUNT_CAP]:
        return 0
    ob = m[H_ORDERS]
    count = 0
    slot = m[m[H_ACCOUNTS] + acct]
    while slot != EMPTY:
        if instr == -1 or instrument_of(m, ob + slot * OF) == instr:
            count += 1
        slot = m[ob + slot * OF + O_ANEXT]
    return count


@njit(cache=True)
def _mass_cancel(m, cmds, i, ev, n):
    acct = cmds[i, c.C_ACCOUNT]
    instr = cmds[i, c.C_INSTRUMENT]
    if acct < 0 or acct >= m[G_MAX_ACCOUNTS]:
        return _command_reject(ev, n, cmds, i, RJ_INVALID_ACCOUNT)
    if instr != -1 and (
        instr < 0 or instr >= m[H_BOOK_CAP] or m[m[H_BOOKS] + instr * BF + B_ACTIVE] == 0
    ):
        return _command_reject(ev, n, cmds, i, RJ_UNKNOWN_INSTRUMENT)
    ob = m[H_ORDERS]
    head = m[m[H_ACCOUNTS] + acct] if acct < m[H_ACCOUNT_CAP] else EMPTY
    count = _account_orders(m, acct, instr)
    ids = np.empty(count, dtype=np.int64)
    k = 0
    slot = head
    while slot != EMPTY:
        if instr == -1 or instrument_of(m, ob + slot * OF) == instr:
            ids[k] = m[ob + slot * OF + O_ID]
            k += 1
        slot = m[ob + slot * OF + O_ANEXT]
    ids.sort()
    seq = cmds[i, c.C_SEQ]
    for k in range(count):
        slot = _lookup(m, ids[k])
        o = ob + slot * OF
        leaves = m[o + O_SHOWN] + m[o + O_HIDDEN]
        _remove(m, slot)
        n = _order_event(ev, n, seq, EV_CANCELLED, m, slot, leaves, 0, 0, CR_MASS)
    return _put(ev, n, seq, EV_MASS_DONE, instr, 0, acct, 0, 0, count, 0, 0, 0, 0, 0, 0, 0)


@njit(cache=True)
def _expire_due(m, seq, ev, n):
    """Expire due GTD orders while the buffer has room; the rest wait for the next call."""
    now = m[G_NOW]
    hb = m[H_HEAP]
    while m[G_HEAP_N] > 0 and n < ev.shape[0]:
        slot = m[hb]
        o = m[H_ORDERS] + slot * OF
        if m[o + O_EXPIRE] > now:
            break
        leaves = m[o + O_SHOWN] + m[o + O_HIDDEN]
        _remove(m, slot)
        n = _order_event(ev, n, seq, EV_EXPIRED, m, slot, leaves, 0, 0, 0)
    return n


@njit(cache=True, inline="always")
def expiry_pending(m) -> bool:
    """Whether a GTD order is due at the book's clock (``G_NOW``): the next command,
    or a CLOCK_TICK, will expire it first."""
    if m[G_HEAP_N] == 0:
        return False
    return m[m[H_ORDERS] + m[m[H_HEAP]] * OF + O_EXPIRE] <= m[G_NOW]


@njit(cache=True, inline="always")
def _event_bound(m, cmds, i, slot) -> int:
    """Most event rows command ``i`` can write: room is checked before anything changes."""
    kind = cmds[i, c.C_KIND]
    if kind == MASS_CANCEL:
        return 1 + _account_orders(m, cmds[i, c.C_ACCOUNT], cmds[i, c.C_INSTRUMENT])
    if kind != NEW_ORDER and kind != REPLACE_ORDER:
        return 1
    instr = cmds[i, c.C_INSTRUMENT]
    if instr < 0 or instr >= m[H_BOOK_CAP]:
        return 1
    if kind == NEW_ORDER:
        side = cmds[i, c.C_SIDE]
        stp = cmds[i, c.C_STP]
        if side != BUY and side != SELL:
            return 1
    else:
        if slot == EMPTY:
            return 1
        side = side_of(m, m[H_ORDERS] + slot * OF)
        stp = _stp_of(m, m[H_ORDERS] + slot * OF)
    b = m[H_BOOKS] + instr * BF
    touches = m[b + B_WEIGHT + 2 - side]
    qty = cmds[i, c.C_QTY]
    # Every fill or decrement takes at least a lot; only CANCEL_OLDEST can meet many
    # of the taker's own orders without shrinking it.
    if stp != STP_OLDEST and qty >= 0 and m[b + B_LOT] > 0:
        touches = min(touches, _per_unit(qty, m[b + B_LOT]) + 1)
    return 2 + 2 * touches


@njit(cache=True, inline="always")
def _needs_growth(m, cmds, i) -> int:
    kind = cmds[i, c.C_KIND]
    if kind != NEW_ORDER and kind != REPLACE_ORDER:
        return DONE
    if m[G_FREE_LEVEL] == EMPTY:
        return GROW_LEVELS
    if m[G_FREE_CHUNK] == EMPTY:
        return GROW_CHUNKS
    if kind == NEW_ORDER:
        if m[G_FREE_ORDER] == EMPTY and m[H_ORDER_CAP] < m[G_MAX_ORDERS]:
            return GROW_ORDERS
        acct = cmds[i, c.C_ACCOUNT]
        if m[H_ACCOUNT_CAP] <= acct < m[G_MAX_ACCOUNTS]:
            return GROW_ACCOUNTS
    return DONE


@njit(cache=True)
def run_batch(state, cmds, start, end, ev, n, validated=False):
    """Process ``cmds[start:end]``, writing events into ``ev`` from row ``n``.

    Returns ``(status, next index, ev, events written)``. A status other than DONE
    means the command at ``next index`` did not run: a pool must grow (GROW_*) or the
    event buffer must be drained or enlarged (NEED_EVENT_ROOM); nothing of it has been
    applied except GTD expiries already due, so the caller acts and calls again.
    ``validated`` says a one-command call's NEW_ORDER already passed ``validate_new``
    against this state (the engine validates before its risk check), so it is not
    checked twice.
    """
    m = borrow(state.mem)
    cm = borrow(cmds)
    out = borrow(ev)
    cap = out.shape[0]
    for i in range(start, end):
        need = _needs_growth(m, cm, i)
        if need != DONE:
            return need, i, ev, n
        if cm[i, c.C_TS] > m[G_NOW]:
            m[G_NOW] = cm[i, c.C_TS]
        if m[G_HEAP_N] > 0:
            n = _expire_due(m, cm[i, c.C_SEQ], out, n)
            if expiry_pending(m):
                return NEED_EVENT_ROOM, i, ev, n
        kind = cm[i, c.C_KIND]
        slot = EMPTY
        if kind == CANCEL_ORDER or kind == REPLACE_ORDER:
            slot = owned_slot(m, cm, i)
        if n + _event_bound(m, cm, i, slot) > cap:
            return NEED_EVENT_ROOM, i, ev, n
        # New orders and replaces share one trading step (one copy of the inlined _take).
        trades = False
        t_oid = t_acct = t_stp = t_leaves = t_filled = t_qty = 0
        if kind == NEW_ORDER:
            n, trades = _new_order_enter(m, cm, i, out, n, validated)
            t_oid = cm[i, c.C_ORDER_ID]
            t_acct = cm[i, c.C_ACCOUNT]
            t_stp = cm[i, c.C_STP]
            t_leaves = t_qty = cm[i, c.C_QTY]
        elif kind == CANCEL_ORDER:
            n = _cancel(m, cm, i, out, n, slot)
        elif kind == REPLACE_ORDER:
            n, trades = _replace_enter(m, cm, i, out, n, slot)
            if trades:
                o = m[H_ORDERS] + slot * OF
                t_oid = m[o + O_ID]
                t_acct = m[o + O_ACCOUNT]
                t_stp = _stp_of(m, o)
                t_filled = m[o + O_FILLED]
                t_qty = cm[i, c.C_QTY]
                t_leaves = t_qty - t_filled
        elif kind == MASS_CANCEL:
            n = _mass_cancel(m, cm, i, out, n)
        elif kind != CLOCK_TICK:
            n = _command_reject(out, n, cm, i, RJ_INVALID_COMMAND)
        if trades:
            n, leaves, filled, qty, alive = _take(
                m, out, n, cm[i, c.C_SEQ], cm[i, c.C_INSTRUMENT], _taker_side(m, cm, i, slot),
                cm[i, c.C_PRICE], t_oid, t_acct, t_stp, t_leaves, t_filled, t_qty,
            )  # fmt: skip
            if kind == NEW_ORDER:
                n = _new_order_finish(m, cm, i, out, n, leaves, filled, qty, alive)
            else:
                _replace_finish(m, slot, leaves, filled, qty, alive)
    return DONE, end, ev, n


@njit(cache=True, inline="always")
def _taker_side(m, cmds, i, slot) -> int:
    if slot == EMPTY:
        return cmds[i, c.C_SIDE]
    return side_of(m, m[H_ORDERS] + slot * OF)


# =========================================================================================
# Queries, snapshot and restore
# =========================================================================================
@njit(cache=True)
def depth(state, instr, side, max_levels):
    """Top levels of one side as (price, visible qty, order count) rows, best first."""
    m = state.mem
    s = side - 1
    b = m[H_BOOKS] + instr * BF
    out = np.empty((max(0, max_levels), 3), dtype=np.int64)
    k = 0
    t = m[b + B_BEST + s]
    while t >= 0 and k < out.shape[0]:
        lrow = m[H_LEVELS] + _level_at(m, instr, s, t) * LF
        out[k, 0] = m[lrow + L_PRICE]
        out[k, 1] = m[lrow + L_VISIBLE]
        out[k, 2] = m[lrow + L_COUNT]
        k += 1
        t = _worse_tick(m, b, s, t)
    return out[:k]


@njit(cache=True)
def level_order_ids(state, instr, side, price):
    m = state.mem
    lvl = _find_level(m, instr, side, price)
    if lvl == EMPTY:
        return np.empty(0, dtype=np.int64)
    lrow = m[H_LEVELS] + lvl * LF
    out = np.empty(m[lrow + L_COUNT], dtype=np.int64)
    slot = m[lrow + L_HEAD]
    k = 0
    while slot != EMPTY:
        out[k] = m[m[H_ORDERS] + slot * OF + O_ID]
        k += 1
        slot = m[m[H_ORDERS] + slot * OF + O_NEXT]
    return out


@njit(cache=True)
def snapshot_orders(state):
    """Resting orders in canonical order: instrument, bids then asks, best first, FIFO."""
    m = state.mem
    out = np.empty((m[G_LIVE], c.N_SNAPSHOT_FIELDS), dtype=np.int64)
    ob = m[H_ORDERS]
    k = 0
    for instr in range(m[H_BOOK_CAP]):
        if m[m[H_BOOKS] + instr * BF + B_ACTIVE] == 0:
            continue
        b = m[H_BOOKS] + instr * BF
        for s in range(2):
            t = m[b + B_BEST + s]
            while t >= 0:
                slot = m[m[H_LEVELS] + _level_at(m, instr, s, t) * LF + L_HEAD]
                t = _worse_tick(m, b, s, t)
                while slot != EMPTY:
                    o = ob + slot * OF
                    _order_row_into(m, o, instr, s + 1, out, k)
                    k += 1
                    slot = m[o + O_NEXT]
    return out


@njit(cache=True, inline="always")
def _order_row_into(m, o, instr, side, out, k) -> None:
    """Write the order row at word ``o`` as snapshot row ``out[k]`` (``c.S_*`` columns)."""
    out[k, c.S_INSTRUMENT] = instr
    out[k, c.S_SIDE] = side
    out[k, c.S_PRICE] = m[o + O_PRICE]
    out[k, c.S_ORDER_ID] = m[o + O_ID]
    out[k, c.S_ACCOUNT] = m[o + O_ACCOUNT]
    out[k, c.S_QTY] = m[o + O_QTY]
    out[k, c.S_FILLED] = m[o + O_FILLED]
    out[k, c.S_SHOWN] = m[o + O_SHOWN]
    out[k, c.S_HIDDEN] = m[o + O_HIDDEN]
    out[k, c.S_DISPLAY] = m[o + O_DISPLAY]
    out[k, c.S_TIF] = _tif_of(m, o)
    out[k, c.S_STP] = _stp_of(m, o)
    out[k, c.S_POST_ONLY] = _post_only_of(m, o)
    out[k, c.S_EXPIRE_TS] = m[o + O_EXPIRE]


@njit(cache=True)
def order_row(state, order_id):
    """The resting order ``order_id`` as a snapshot row, or an empty array if no order of
    that id rests (never entered, or filled, cancelled or expired since)."""
    m = state.mem
    if order_id <= 0:
        return np.empty(0, dtype=np.int64)
    slot = _lookup(m, order_id)
    if slot == EMPTY:
        return np.empty(0, dtype=np.int64)
    o = m[H_ORDERS] + slot * OF
    out = np.empty((1, c.N_SNAPSHOT_FIELDS), dtype=np.int64)
    _order_row_into(m, o, instrument_of(m, o), side_of(m, o), out, 0)
    return out[0]


@njit(cache=True)
def account_order_rows(state, acct, instr):
    """``acct``'s resting orders (on ``instr``, or on every instrument for -1) as snapshot
    rows in ascending order id."""
    m = state.mem
    count = _account_orders(m, acct, instr)
    out = np.empty((count, c.N_SNAPSHOT_FIELDS), dtype=np.int64)
    if count == 0:
        return out
    ob = m[H_ORDERS]
    k = 0
    slot = m[m[H_ACCOUNTS] + acct]
    while slot != EMPTY:
        o = ob + slot * OF
        if instr == -1 or instrument_of(m, o) == instr:
            _order_row_into(m, o, instrument_of(m, o), side_of(m, o), out, k)
            k += 1
        slot = m[o + O_ANEXT]
    return out[np.argsort(out[:, c.S_ORDER_ID])]


@njit(cache=True)
def load_orders(state, rows, start):
    """Append snapshot rows from ``start``; returns (status, next row) like ``run_batch``."""
    m = borrow(state.mem)
    for k in range(start, rows.shape[0]):
        instr = rows[k, c.S_INSTRUMENT]
        if m[G_FREE_ORDER] == EMPTY:
            return GROW_ORDERS, k
        if m[G_FREE_LEVEL] == EMPTY:
            return GROW_LEVELS, k
        if m[G_FREE_CHUNK] == EMPTY:
            return GROW_CHUNKS, k
        if rows[k, c.S_ACCOUNT] >= m[H_ACCOUNT_CAP]:
            return GROW_ACCOUNTS, k
        slot = m[G_FREE_ORDER]
        o = m[H_ORDERS] + slot * OF
        m[G_FREE_ORDER] = m[o + O_NEXT]
        m[o + O_ID] = rows[k, c.S_ORDER_ID]
        m[o + O_ACCOUNT] = rows[k, c.S_ACCOUNT]
        m[o + O_SHOWN] = rows[k, c.S_SHOWN]
        m[o + O_HIDDEN] = rows[k, c.S_HIDDEN]
        m[o + O_FILLED] = rows[k, c.S_FILLED]
        m[o + O_QTY] = rows[k, c.S_QTY]
        m[o + O_PRICE] = rows[k, c.S_PRICE]
        m[o + O_META] = _pack_meta(
            instr, rows[k, c.S_SIDE], rows[k, c.S_TIF], rows[k, c.S_STP], rows[k, c.S_POST_ONLY]
        )
        m[o + O_DISPLAY] = rows[k, c.S_DISPLAY]
        m[o + O_EXPIRE] = rows[k, c.S_EXPIRE_TS]
        _rest(m, slot)
        _index(m, slot)
    return DONE, rows.shape[0]

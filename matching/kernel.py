"""numba kernels of the fast order book: every book, order and level lives in int64 arrays.

All compiled code sits in this one module on purpose: numba's on-disk cache only
notices edits to the file a function is defined in, so splitting the kernels would let
a stale cache survive a change to a helper.

Layout (see ``new_state``): ``orders`` is a pool of order rows linked FIFO per level and
per account; ``levels`` a pool of price levels; each (instrument, side) keeps its levels
in a sorted segment of ``seg`` with the best price at the end, so the best level is O(1)
and a new level is found by binary search, never by walking empty ticks; ``idmap`` is an
open-addressing table order id -> slot; ``heap`` orders GTD slots by (expiry, id).
The rules are those of ``matching.reference`` (its docstring lists them); the two must
produce identical events.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from matching import codes as c

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
O_INSTRUMENT = 10
O_SIDE = 11
O_DISPLAY = 12
O_TIF = 13
O_STP = 14
O_POST_ONLY = 15
O_EXPIRE = 16
O_ANEXT = 17  # account list
O_APREV = 18
O_HEAP_POS = 19
ORDER_FIELDS = 20

# --- level rows ------------------------------------------------------------------------
L_PRICE = 0
L_HEAD = 1
L_TAIL = 2
L_VISIBLE = 3
L_COUNT = 4
L_FREE_NEXT = 5
LEVEL_FIELDS = 6

# --- book rows (one per instrument id) ---------------------------------------------------
B_ACTIVE = 0
B_TICK = 1
B_LOT = 2
B_MIN_PRICE = 3
B_MAX_PRICE = 4
B_MIN_QTY = 5
B_MAX_QTY = 6
B_SEG_START = 7  # + 3 * side index (0 bids, 1 asks)
B_SEG_LEN = 8
B_SEG_CAP = 9
BOOK_FIELDS = 13

# --- globals -----------------------------------------------------------------------------
G_FREE_ORDER = 0
G_FREE_LEVEL = 1
G_LIVE = 2
G_MAX_ORDERS = 3
G_MAX_ACCOUNTS = 4
G_TRADE_ID = 5
G_NOW = 6
G_HEAP_N = 7
G_SEG_HWM = 8
GLOBAL_FIELDS = 9

# --- run_batch status ----------------------------------------------------------------------
DONE = 0
GROW_ORDERS = 1
GROW_SEGMENTS = 2
GROW_ACCOUNTS = 3

MIN_SEGMENT = 8
EMPTY = -1

# Local copies: numba folds module-level ints into the compiled code as constants.
NEW_ORDER = int(c.CommandKind.NEW_ORDER)
CANCEL_ORDER = int(c.CommandKind.CANCEL_ORDER)
REPLACE_ORDER = int(c.CommandKind.REPLACE_ORDER)
MASS_CANCEL = int(c.CommandKind.MASS_CANCEL)
CLOCK_TICK = int(c.CommandKind.CLOCK_TICK)
EV_ACCEPTED = int(c.EventKind.ORDER_ACCEPTED)
EV_REJECTED = int(c.EventKind.ORDER_REJECTED)
EV_FILLED = int(c.EventKind.ORDER_FILLED)
EV_CANCELLED = int(c.EventKind.ORDER_CANCELLED)
EV_REPLACED = int(c.EventKind.ORDER_REPLACED)
EV_EXPIRED = int(c.EventKind.ORDER_EXPIRED)
EV_MASS_DONE = int(c.EventKind.MASS_CANCEL_DONE)
EV_CMD_REJECTED = int(c.EventKind.COMMAND_REJECTED)
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
RJ_OK = int(c.RejectCode.OK)
RJ_INVALID_COMMAND = int(c.RejectCode.INVALID_COMMAND)
RJ_UNKNOWN_INSTRUMENT = int(c.RejectCode.UNKNOWN_INSTRUMENT)
RJ_INVALID_ACCOUNT = int(c.RejectCode.INVALID_ACCOUNT)
RJ_INVALID_ORDER_ID = int(c.RejectCode.INVALID_ORDER_ID)
RJ_INVALID_SIDE = int(c.RejectCode.INVALID_SIDE)
RJ_INVALID_ORDER_TYPE = int(c.RejectCode.INVALID_ORDER_TYPE)
RJ_INVALID_TIME_IN_FORCE = int(c.RejectCode.INVALID_TIME_IN_FORCE)
RJ_INVALID_STP_MODE = int(c.RejectCode.INVALID_STP_MODE)
RJ_INVALID_POST_ONLY = int(c.RejectCode.INVALID_POST_ONLY)
RJ_PRICE_OUT_OF_RANGE = int(c.RejectCode.PRICE_OUT_OF_RANGE)
RJ_PRICE_OFF_TICK = int(c.RejectCode.PRICE_OFF_TICK)
RJ_QUANTITY_OUT_OF_RANGE = int(c.RejectCode.QUANTITY_OUT_OF_RANGE)
RJ_QUANTITY_OFF_LOT = int(c.RejectCode.QUANTITY_OFF_LOT)
RJ_INVALID_DISPLAY_QUANTITY = int(c.RejectCode.INVALID_DISPLAY_QUANTITY)
RJ_INVALID_EXPIRE_TIME = int(c.RejectCode.INVALID_EXPIRE_TIME)
RJ_DUPLICATE_ORDER_ID = int(c.RejectCode.DUPLICATE_ORDER_ID)
RJ_ORDER_POOL_FULL = int(c.RejectCode.ORDER_POOL_FULL)
RJ_POST_ONLY_WOULD_TAKE = int(c.RejectCode.POST_ONLY_WOULD_TAKE)
RJ_UNKNOWN_ORDER = int(c.RejectCode.UNKNOWN_ORDER)
RJ_REPLACE_BELOW_FILLED = int(c.RejectCode.REPLACE_BELOW_FILLED)
CR_USER = int(c.CancelReason.USER)
CR_IOC = int(c.CancelReason.IMMEDIATE_OR_CANCEL)
CR_FOK = int(c.CancelReason.FILL_OR_KILL)
CR_SELF = int(c.CancelReason.SELF_TRADE)
CR_MASS = int(c.CancelReason.MASS_CANCEL)
MAKER = int(c.Liquidity.MAKER)
TAKER = int(c.Liquidity.TAKER)
NE = c.N_EVENT_FIELDS


# =========================================================================================
# State allocation and growth (called from Python, compiled for speed on big pools)
# =========================================================================================
def new_state(
    order_capacity: int,
    account_capacity: int,
    instrument_capacity: int,
    max_orders: int,
    max_accounts: int,
) -> tuple:
    orders = np.zeros((order_capacity, ORDER_FIELDS), dtype=np.int64)
    orders[:, O_NEXT] = np.arange(1, order_capacity + 1)
    orders[-1, O_NEXT] = EMPTY
    levels = np.zeros((order_capacity, LEVEL_FIELDS), dtype=np.int64)
    levels[:, L_FREE_NEXT] = np.arange(1, order_capacity + 1)
    levels[-1, L_FREE_NEXT] = EMPTY
    levels[:, L_HEAD] = EMPTY
    books = np.zeros((instrument_capacity, BOOK_FIELDS), dtype=np.int64)
    seg = np.zeros((max(64, MIN_SEGMENT * 4 * instrument_capacity), 2), dtype=np.int64)
    idmap = np.zeros((_table_size(order_capacity), 2), dtype=np.int64)
    heap = np.zeros(order_capacity, dtype=np.int64)
    accounts = np.full(account_capacity, EMPTY, dtype=np.int64)
    g = np.zeros(GLOBAL_FIELDS, dtype=np.int64)
    g[G_FREE_ORDER] = 0
    g[G_FREE_LEVEL] = 0
    g[G_MAX_ORDERS] = max_orders
    g[G_MAX_ACCOUNTS] = max_accounts
    return (orders, levels, books, seg, idmap, heap, accounts, g)


def _table_size(order_capacity: int) -> int:
    """Power of two at least twice the pool: the id table stays at most half full."""
    size = 16
    while size < 2 * order_capacity:
        size *= 2
    return size


def grow_orders(state: tuple, new_capacity: int) -> tuple:
    """Double the order pool (and the pools sized with it); free slots join the free lists."""
    orders, levels, books, seg, idmap, heap, accounts, g = state
    old = orders.shape[0]
    new_orders = np.zeros((new_capacity, ORDER_FIELDS), dtype=np.int64)
    new_orders[:old] = orders
    new_orders[old:, O_NEXT] = np.arange(old + 1, new_capacity + 1)
    new_orders[-1, O_NEXT] = g[G_FREE_ORDER]
    g[G_FREE_ORDER] = old
    new_levels = np.zeros((new_capacity, LEVEL_FIELDS), dtype=np.int64)
    new_levels[:old] = levels
    new_levels[old:, L_HEAD] = EMPTY
    new_levels[old:, L_FREE_NEXT] = np.arange(old + 1, new_capacity + 1)
    new_levels[-1, L_FREE_NEXT] = g[G_FREE_LEVEL]
    g[G_FREE_LEVEL] = old
    new_heap = np.zeros(new_capacity, dtype=np.int64)
    new_heap[: heap.shape[0]] = heap
    new_idmap = np.zeros((_table_size(new_capacity), 2), dtype=np.int64)
    _rehash(idmap, new_idmap)
    return (new_orders, new_levels, books, seg, new_idmap, new_heap, accounts, g)


def grow_segments(state: tuple, needed: int) -> tuple:
    orders, levels, books, seg, idmap, heap, accounts, g = state
    size = seg.shape[0]
    while size < needed:
        size *= 2
    new_seg = np.zeros((size, 2), dtype=np.int64)
    new_seg[: seg.shape[0]] = seg
    return (orders, levels, books, new_seg, idmap, heap, accounts, g)


def grow_accounts(state: tuple, needed: int) -> tuple:
    orders, levels, books, seg, idmap, heap, accounts, g = state
    size = accounts.shape[0]
    while size < needed:
        size *= 2
    new_accounts = np.full(size, EMPTY, dtype=np.int64)
    new_accounts[: accounts.shape[0]] = accounts
    return (orders, levels, books, seg, idmap, heap, new_accounts, g)


def grow_books(state: tuple, needed: int) -> tuple:
    orders, levels, books, seg, idmap, heap, accounts, g = state
    size = max(1, books.shape[0])
    while size < needed:
        size *= 2
    new_books = np.zeros((size, BOOK_FIELDS), dtype=np.int64)
    new_books[: books.shape[0]] = books
    return (orders, levels, new_books, seg, idmap, heap, accounts, g)


# =========================================================================================
# Order id table: linear probing with backward-shift deletion
# =========================================================================================
@njit(cache=True, inline="always")
def _home(key: int, mask: int) -> int:
    h = key * -7046029254386353131
    h ^= h >> 29
    return h & mask


@njit(cache=True)
def _lookup(idmap: np.ndarray, key: int) -> int:
    mask = idmap.shape[0] - 1
    i = _home(key, mask)
    while True:
        k = idmap[i, 0]
        if k == key:
            return idmap[i, 1]
        if k == 0:
            return EMPTY
        i = (i + 1) & mask


@njit(cache=True)
def _id_insert(idmap: np.ndarray, key: int, slot: int) -> None:
    mask = idmap.shape[0] - 1
    i = _home(key, mask)
    while idmap[i, 0] != 0:
        i = (i + 1) & mask
    idmap[i, 0] = key
    idmap[i, 1] = slot


@njit(cache=True)
def _id_delete(idmap: np.ndarray, key: int) -> None:
    mask = idmap.shape[0] - 1
    i = _home(key, mask)
    while idmap[i, 0] != key:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        k = idmap[j, 0]
        if k == 0:
            break
        home = _home(k, mask)
        # Entry j may fill the hole at i only if its home is not cyclically in (i, j].
        if i <= j:
            stays = i < home <= j
        else:
            stays = home > i or home <= j
        if not stays:
            idmap[i, 0] = k
            idmap[i, 1] = idmap[j, 1]
            i = j
    idmap[i, 0] = 0
    idmap[i, 1] = 0


@njit(cache=True)
def _rehash(old: np.ndarray, new: np.ndarray) -> None:
    for i in range(old.shape[0]):
        if old[i, 0] != 0:
            _id_insert(new, old[i, 0], old[i, 1])


# =========================================================================================
# GTD heap keyed by (expire_ts, order id); each order knows its heap position
# =========================================================================================
@njit(cache=True, inline="always")
def _heap_less(orders: np.ndarray, a: int, b: int) -> bool:
    ea = orders[a, O_EXPIRE]
    eb = orders[b, O_EXPIRE]
    return ea < eb or (ea == eb and orders[a, O_ID] < orders[b, O_ID])


@njit(cache=True)
def _heap_sift_up(orders: np.ndarray, heap: np.ndarray, pos: int) -> None:
    slot = heap[pos]
    while pos > 0:
        parent = (pos - 1) >> 1
        p = heap[parent]
        if not _heap_less(orders, slot, p):
            break
        heap[pos] = p
        orders[p, O_HEAP_POS] = pos
        pos = parent
    heap[pos] = slot
    orders[slot, O_HEAP_POS] = pos


@njit(cache=True)
def _heap_sift_down(orders: np.ndarray, heap: np.ndarray, n: int, pos: int) -> None:
    slot = heap[pos]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        if child + 1 < n and _heap_less(orders, heap[child + 1], heap[child]):
            child += 1
        ch = heap[child]
        if not _heap_less(orders, ch, slot):
            break
        heap[pos] = ch
        orders[ch, O_HEAP_POS] = pos
        pos = child
    heap[pos] = slot
    orders[slot, O_HEAP_POS] = pos


@njit(cache=True)
def _heap_push(orders: np.ndarray, heap: np.ndarray, g: np.ndarray, slot: int) -> None:
    n = g[G_HEAP_N]
    heap[n] = slot
    g[G_HEAP_N] = n + 1
    _heap_sift_up(orders, heap, n)


@njit(cache=True)
def _heap_remove(orders: np.ndarray, heap: np.ndarray, g: np.ndarray, slot: int) -> None:
    pos = orders[slot, O_HEAP_POS]
    n = g[G_HEAP_N] - 1
    g[G_HEAP_N] = n
    if pos == n:
        return
    last = heap[n]
    heap[pos] = last
    orders[last, O_HEAP_POS] = pos
    if pos > 0 and _heap_less(orders, last, heap[(pos - 1) >> 1]):
        _heap_sift_up(orders, heap, pos)
    else:
        _heap_sift_down(orders, heap, n, pos)


# =========================================================================================
# Sorted level segments: keys ascending, best level last
# =========================================================================================
@njit(cache=True, inline="always")
def _level_key(side: int, price: int) -> int:
    return price if side == BUY else -price


@njit(cache=True)
def _seg_lower_bound(seg: np.ndarray, start: int, n: int, key: int) -> int:
    lo = start
    hi = start + n
    while lo < hi:
        mid = (lo + hi) >> 1
        if seg[mid, 0] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _find_level(books: np.ndarray, seg: np.ndarray, instr: int, side: int, price: int) -> int:
    s = side - 1
    start = books[instr, B_SEG_START + 3 * s]
    n = books[instr, B_SEG_LEN + 3 * s]
    key = _level_key(side, price)
    pos = _seg_lower_bound(seg, start, n, key)
    if pos < start + n and seg[pos, 0] == key:
        return seg[pos, 1]
    return EMPTY


@njit(cache=True)
def _level_for_insert(
    levels: np.ndarray,
    books: np.ndarray,
    seg: np.ndarray,
    g: np.ndarray,
    instr: int,
    side: int,
    price: int,
) -> int:
    """The level at ``price``, created (and placed in the segment) if missing."""
    s = side - 1
    base = B_SEG_START + 3 * s
    start = books[instr, base]
    n = books[instr, base + 1]
    key = _level_key(side, price)
    pos = _seg_lower_bound(seg, start, n, key)
    if pos < start + n and seg[pos, 0] == key:
        return seg[pos, 1]
    lvl = g[G_FREE_LEVEL]
    g[G_FREE_LEVEL] = levels[lvl, L_FREE_NEXT]
    levels[lvl, L_PRICE] = price
    levels[lvl, L_HEAD] = EMPTY
    levels[lvl, L_TAIL] = EMPTY
    levels[lvl, L_VISIBLE] = 0
    levels[lvl, L_COUNT] = 0
    cap = books[instr, base + 2]
    if n == cap:  # relocate to a segment twice as large at the high-water mark
        new_cap = max(MIN_SEGMENT, 2 * cap)
        new_start = g[G_SEG_HWM]
        g[G_SEG_HWM] = new_start + new_cap
        for j in range(n):
            seg[new_start + j, 0] = seg[start + j, 0]
            seg[new_start + j, 1] = seg[start + j, 1]
        pos = new_start + (pos - start)
        start = new_start
        books[instr, base] = start
        books[instr, base + 2] = new_cap
    for j in range(start + n, pos, -1):
        seg[j, 0] = seg[j - 1, 0]
        seg[j, 1] = seg[j - 1, 1]
    seg[pos, 0] = key
    seg[pos, 1] = lvl
    books[instr, base + 1] = n + 1
    return lvl


@njit(cache=True)
def _drop_level(
    levels: np.ndarray,
    books: np.ndarray,
    seg: np.ndarray,
    g: np.ndarray,
    instr: int,
    side: int,
    lvl: int,
) -> None:
    s = side - 1
    base = B_SEG_START + 3 * s
    start = books[instr, base]
    n = books[instr, base + 1]
    pos = _seg_lower_bound(seg, start, n, _level_key(side, levels[lvl, L_PRICE]))
    for j in range(pos, start + n - 1):
        seg[j, 0] = seg[j + 1, 0]
        seg[j, 1] = seg[j + 1, 1]
    books[instr, base + 1] = n - 1
    levels[lvl, L_HEAD] = EMPTY
    levels[lvl, L_TAIL] = EMPTY
    levels[lvl, L_COUNT] = 0
    levels[lvl, L_FREE_NEXT] = g[G_FREE_LEVEL]
    g[G_FREE_LEVEL] = lvl


# =========================================================================================
# Orders in levels and in the indexes
# =========================================================================================
@njit(cache=True, inline="always")
def _append(orders: np.ndarray, levels: np.ndarray, lvl: int, slot: int) -> None:
    tail = levels[lvl, L_TAIL]
    orders[slot, O_PREV] = tail
    orders[slot, O_NEXT] = EMPTY
    if tail == EMPTY:
        levels[lvl, L_HEAD] = slot
    else:
        orders[tail, O_NEXT] = slot
    levels[lvl, L_TAIL] = slot
    orders[slot, O_LEVEL] = lvl


@njit(cache=True, inline="always")
def _unlink(orders: np.ndarray, levels: np.ndarray, lvl: int, slot: int) -> None:
    prev = orders[slot, O_PREV]
    nxt = orders[slot, O_NEXT]
    if prev == EMPTY:
        levels[lvl, L_HEAD] = nxt
    else:
        orders[prev, O_NEXT] = nxt
    if nxt == EMPTY:
        levels[lvl, L_TAIL] = prev
    else:
        orders[nxt, O_PREV] = prev


@njit(cache=True)
def _rest(
    orders: np.ndarray,
    levels: np.ndarray,
    books: np.ndarray,
    seg: np.ndarray,
    g: np.ndarray,
    slot: int,
) -> None:
    """Put ``slot`` at the back of its price level."""
    instr = orders[slot, O_INSTRUMENT]
    lvl = _level_for_insert(
        levels, books, seg, g, instr, orders[slot, O_SIDE], orders[slot, O_PRICE]
    )
    _append(orders, levels, lvl, slot)
    levels[lvl, L_COUNT] += 1
    levels[lvl, L_VISIBLE] += orders[slot, O_SHOWN]


@njit(cache=True)
def _leave_level(
    orders: np.ndarray,
    levels: np.ndarray,
    books: np.ndarray,
    seg: np.ndarray,
    g: np.ndarray,
    slot: int,
) -> None:
    """Take ``slot`` out of its level, dropping the level when it empties."""
    lvl = orders[slot, O_LEVEL]
    _unlink(orders, levels, lvl, slot)
    levels[lvl, L_VISIBLE] -= orders[slot, O_SHOWN]
    levels[lvl, L_COUNT] -= 1
    if levels[lvl, L_COUNT] == 0:
        _drop_level(levels, books, seg, g, orders[slot, O_INSTRUMENT], orders[slot, O_SIDE], lvl)


@njit(cache=True)
def _index(
    orders: np.ndarray,
    idmap: np.ndarray,
    heap: np.ndarray,
    accounts: np.ndarray,
    g: np.ndarray,
    slot: int,
) -> None:
    _id_insert(idmap, orders[slot, O_ID], slot)
    acct = orders[slot, O_ACCOUNT]
    head = accounts[acct]
    orders[slot, O_ANEXT] = head
    orders[slot, O_APREV] = EMPTY
    if head != EMPTY:
        orders[head, O_APREV] = slot
    accounts[acct] = slot
    if orders[slot, O_TIF] == GTD:
        _heap_push(orders, heap, g, slot)
    g[G_LIVE] += 1


@njit(cache=True)
def _unindex_and_free(
    orders: np.ndarray,
    idmap: np.ndarray,
    heap: np.ndarray,
    accounts: np.ndarray,
    g: np.ndarray,
    slot: int,
) -> None:
    _id_delete(idmap, orders[slot, O_ID])
    prev = orders[slot, O_APREV]
    nxt = orders[slot, O_ANEXT]
    if prev == EMPTY:
        accounts[orders[slot, O_ACCOUNT]] = nxt
    else:
        orders[prev, O_ANEXT] = nxt
    if nxt != EMPTY:
        orders[nxt, O_APREV] = prev
    if orders[slot, O_TIF] == GTD:
        _heap_remove(orders, heap, g, slot)
    g[G_LIVE] -= 1
    orders[slot, O_NEXT] = g[G_FREE_ORDER]
    g[G_FREE_ORDER] = slot


# =========================================================================================
# Events
# =========================================================================================
@njit(cache=True)
def _room(ev: np.ndarray, n: int, k: int) -> np.ndarray:
    """The event buffer, doubled if fewer than ``k`` rows are free."""
    if n + k <= ev.shape[0]:
        return ev
    bigger = np.zeros((max(2 * ev.shape[0], n + k), NE), dtype=np.int64)
    bigger[:n] = ev[:n]
    return bigger


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


@njit(cache=True)
def _order_event(
    ev: np.ndarray,
    n: int,
    seq: int,
    kind: int,
    orders: np.ndarray,
    slot: int,
    qty: int,
    leaves: int,
    shown: int,
    reason: int,
) -> tuple:
    ev = _room(ev, n, 1)
    n = _put(
        ev,
        n,
        seq,
        kind,
        orders[slot, O_INSTRUMENT],
        orders[slot, O_ID],
        orders[slot, O_ACCOUNT],
        orders[slot, O_SIDE],
        orders[slot, O_PRICE],
        qty,
        leaves,
        shown,
        0,
        0,
        reason,
        0,
        0,
    )
    return ev, n


# =========================================================================================
# Matching
# =========================================================================================
@njit(cache=True)
def _fok_fillable(
    orders: np.ndarray,
    levels: np.ndarray,
    books: np.ndarray,
    seg: np.ndarray,
    instr: int,
    side: int,
    limit: int,
    acct: int,
    stp: int,
    need: int,
) -> bool:
    s = 2 - side  # opposite side index
    start = books[instr, B_SEG_START + 3 * s]
    n = books[instr, B_SEG_LEN + 3 * s]
    for pos in range(start + n - 1, start - 1, -1):
        lvl = seg[pos, 1]
        price = levels[lvl, L_PRICE]
        if (side == BUY and price > limit) or (side == SELL and price < limit):
            return False
        m = levels[lvl, L_HEAD]
        while m != EMPTY:
            if orders[m, O_ACCOUNT] == acct:
                if stp != STP_OLDEST:
                    return False
            else:
                need -= orders[m, O_SHOWN] + orders[m, O_HIDDEN]
            m = orders[m, O_NEXT]
        if need <= 0:
            return True
    return False


@njit(cache=True)
def _would_take(
    levels: np.ndarray, books: np.ndarray, seg: np.ndarray, instr: int, side: int, price: int
) -> bool:
    s = 2 - side
    n = books[instr, B_SEG_LEN + 3 * s]
    if n == 0:
        return False
    best = levels[seg[books[instr, B_SEG_START + 3 * s] + n - 1, 1], L_PRICE]
    return best <= price if side == BUY else best >= price


@njit(cache=True)
def _take(
    orders,
    levels,
    books,
    seg,
    idmap,
    heap,
    accounts,
    g,
    ev,
    n,
    seq,
    instr,
    side,
    limit,
    oid,
    acct,
    stp,
    leaves,
    filled,
    qty,
):
    """Trade a taker against the opposite side.

    Returns ``(ev, n, leaves, filled, qty, alive)``; ``alive`` is False when self-trade
    prevention cancelled the taker.
    """
    s = 2 - side
    base = B_SEG_START + 3 * s
    while leaves > 0:
        nlev = books[instr, base + 1]
        if nlev == 0:
            break
        lvl = seg[books[instr, base] + nlev - 1, 1]
        price = levels[lvl, L_PRICE]
        if (side == BUY and price > limit) or (side == SELL and price < limit):
            break
        while leaves > 0:
            m = levels[lvl, L_HEAD]
            if m == EMPTY:
                break
            ev = _room(ev, n, 2)
            if orders[m, O_ACCOUNT] == acct:
                m_leaves = orders[m, O_SHOWN] + orders[m, O_HIDDEN]
                if stp == STP_OLDEST or stp == STP_BOTH:
                    _leave_level(orders, levels, books, seg, g, m)
                    _unindex_and_free(orders, idmap, heap, accounts, g, m)
                    ev, n = _order_event(
                        ev, n, seq, EV_CANCELLED, orders, m, m_leaves, 0, 0, CR_SELF
                    )
                    if stp == STP_OLDEST:
                        continue
                if stp == STP_NEWEST or stp == STP_BOTH:
                    ev = _room(ev, n, 1)
                    n = _put(
                        ev,
                        n,
                        seq,
                        EV_CANCELLED,
                        instr,
                        oid,
                        acct,
                        side,
                        limit,
                        leaves,
                        0,
                        0,
                        0,
                        0,
                        CR_SELF,
                        0,
                        0,
                    )
                    return ev, n, 0, filled, qty, False
                # decrement and cancel: hidden quantity first
                dec = min(leaves, m_leaves)
                from_hidden = min(orders[m, O_HIDDEN], dec)
                orders[m, O_HIDDEN] -= from_hidden
                orders[m, O_SHOWN] -= dec - from_hidden
                orders[m, O_QTY] -= dec
                levels[lvl, L_VISIBLE] -= dec - from_hidden
                m_left = m_leaves - dec
                m_shown = orders[m, O_SHOWN]
                if m_left == 0:
                    _leave_level(orders, levels, books, seg, g, m)
                    _unindex_and_free(orders, idmap, heap, accounts, g, m)
                ev, n = _order_event(
                    ev, n, seq, EV_CANCELLED, orders, m, dec, m_left, m_shown, CR_SELF
                )
                leaves -= dec
                qty -= dec
                ev = _room(ev, n, 1)
                n = _put(
                    ev,
                    n,
                    seq,
                    EV_CANCELLED,
                    instr,
                    oid,
                    acct,
                    side,
                    limit,
                    dec,
                    leaves,
                    0,
                    0,
                    0,
                    CR_SELF,
                    0,
                    0,
                )
                if leaves == 0:
                    return ev, n, 0, filled, qty, False
                continue
            m_shown = orders[m, O_SHOWN]
            q = leaves if leaves < m_shown else m_shown
            tid = g[G_TRADE_ID] + 1
            g[G_TRADE_ID] = tid
            m_shown -= q
            orders[m, O_FILLED] += q
            levels[lvl, L_VISIBLE] -= q
            leaves -= q
            filled += q
            m_hidden = orders[m, O_HIDDEN]
            if m_shown == 0 and m_hidden > 0:
                refill = min(orders[m, O_DISPLAY], m_hidden)
                m_hidden -= refill
                m_shown = refill
                orders[m, O_HIDDEN] = m_hidden
                levels[lvl, L_VISIBLE] += refill
                if levels[lvl, L_TAIL] != m:
                    _unlink(orders, levels, lvl, m)
                    _append(orders, levels, lvl, m)
            orders[m, O_SHOWN] = m_shown
            m_id = orders[m, O_ID]
            m_acct = orders[m, O_ACCOUNT]
            n = _put(
                ev,
                n,
                seq,
                EV_FILLED,
                instr,
                m_id,
                m_acct,
                3 - side,
                price,
                q,
                m_shown + m_hidden,
                m_shown,
                tid,
                MAKER,
                0,
                oid,
                acct,
            )
            n = _put(
                ev,
                n,
                seq,
                EV_FILLED,
                instr,
                oid,
                acct,
                side,
                price,
                q,
                leaves,
                0,
                tid,
                TAKER,
                0,
                m_id,
                m_acct,
            )
            if m_shown == 0:
                _leave_level(orders, levels, books, seg, g, m)
                _unindex_and_free(orders, idmap, heap, accounts, g, m)
        # the level emptied (and was dropped) or the taker is done
    return ev, n, leaves, filled, qty, True


# =========================================================================================
# Commands
# =========================================================================================
@njit(cache=True)
def _validate_new(books, idmap, g, cmds, i) -> int:
    instr = cmds[i, c.C_INSTRUMENT]
    if instr < 0 or instr >= books.shape[0] or books[instr, B_ACTIVE] == 0:
        return RJ_UNKNOWN_INSTRUMENT
    acct = cmds[i, c.C_ACCOUNT]
    if acct < 0 or acct >= g[G_MAX_ACCOUNTS]:
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
    if (post_only != 0 and post_only != 1) or (post_only == 1 and (not resting or otype == MARKET)):
        return RJ_INVALID_POST_ONLY
    price = cmds[i, c.C_PRICE]
    if price < books[instr, B_MIN_PRICE] or price > books[instr, B_MAX_PRICE]:
        return RJ_PRICE_OUT_OF_RANGE
    if price % books[instr, B_TICK] != 0:
        return RJ_PRICE_OFF_TICK
    qty = cmds[i, c.C_QTY]
    if qty < books[instr, B_MIN_QTY] or qty > books[instr, B_MAX_QTY]:
        return RJ_QUANTITY_OUT_OF_RANGE
    lot = books[instr, B_LOT]
    if qty % lot != 0:
        return RJ_QUANTITY_OFF_LOT
    display = cmds[i, c.C_DISPLAY_QTY]
    if display < 0 or display > qty or display % lot != 0 or (display > 0 and not resting):
        return RJ_INVALID_DISPLAY_QUANTITY
    expire = cmds[i, c.C_EXPIRE_TS]
    if (tif == GTD and expire <= g[G_NOW]) or (tif != GTD and expire != 0):
        return RJ_INVALID_EXPIRE_TIME
    if _lookup(idmap, oid) != EMPTY:
        return RJ_DUPLICATE_ORDER_ID
    if resting and g[G_LIVE] >= g[G_MAX_ORDERS]:
        return RJ_ORDER_POOL_FULL
    return RJ_OK


@njit(cache=True)
def _new_order(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n):
    seq = cmds[i, c.C_SEQ]
    instr = cmds[i, c.C_INSTRUMENT]
    oid = cmds[i, c.C_ORDER_ID]
    acct = cmds[i, c.C_ACCOUNT]
    side = cmds[i, c.C_SIDE]
    price = cmds[i, c.C_PRICE]
    qty = cmds[i, c.C_QTY]
    code = _validate_new(books, idmap, g, cmds, i)
    if (
        code == RJ_OK
        and cmds[i, c.C_POST_ONLY] == 1
        and _would_take(levels, books, seg, instr, side, price)
    ):
        code = RJ_POST_ONLY_WOULD_TAKE
    ev = _room(ev, n, 1)
    if code != RJ_OK:
        n = _put(
            ev, n, seq, EV_REJECTED, instr, oid, acct, side, price, qty, 0, 0, 0, 0, code, 0, 0
        )
        return ev, n
    n = _put(ev, n, seq, EV_ACCEPTED, instr, oid, acct, side, price, qty, qty, 0, 0, 0, 0, 0, 0)
    tif = cmds[i, c.C_TIF]
    stp = cmds[i, c.C_STP]
    if tif == FOK and not _fok_fillable(
        orders, levels, books, seg, instr, side, price, acct, stp, qty
    ):
        ev = _room(ev, n, 1)
        n = _put(
            ev, n, seq, EV_CANCELLED, instr, oid, acct, side, price, qty, 0, 0, 0, 0, CR_FOK, 0, 0
        )
        return ev, n
    ev, n, leaves, filled, qty, alive = _take(
        orders,
        levels,
        books,
        seg,
        idmap,
        heap,
        accounts,
        g,
        ev,
        n,
        seq,
        instr,
        side,
        price,
        oid,
        acct,
        stp,
        qty,
        0,
        qty,
    )
    if not alive or leaves == 0:
        return ev, n
    if tif != GTC and tif != GTD:
        ev = _room(ev, n, 1)
        n = _put(
            ev,
            n,
            seq,
            EV_CANCELLED,
            instr,
            oid,
            acct,
            side,
            price,
            leaves,
            0,
            0,
            0,
            0,
            CR_IOC,
            0,
            0,
        )
        return ev, n
    slot = g[G_FREE_ORDER]
    g[G_FREE_ORDER] = orders[slot, O_NEXT]
    display = cmds[i, c.C_DISPLAY_QTY]
    shown = min(display, leaves) if display > 0 else leaves
    orders[slot, O_ID] = oid
    orders[slot, O_ACCOUNT] = acct
    orders[slot, O_SHOWN] = shown
    orders[slot, O_HIDDEN] = leaves - shown
    orders[slot, O_FILLED] = filled
    orders[slot, O_QTY] = qty
    orders[slot, O_PRICE] = price
    orders[slot, O_INSTRUMENT] = instr
    orders[slot, O_SIDE] = side
    orders[slot, O_DISPLAY] = display
    orders[slot, O_TIF] = tif
    orders[slot, O_STP] = stp
    orders[slot, O_POST_ONLY] = cmds[i, c.C_POST_ONLY]
    orders[slot, O_EXPIRE] = cmds[i, c.C_EXPIRE_TS]
    _rest(orders, levels, books, seg, g, slot)
    _index(orders, idmap, heap, accounts, g, slot)
    return ev, n


@njit(cache=True)
def _owned_slot(orders, books, idmap, cmds, i) -> int:
    oid = cmds[i, c.C_ORDER_ID]
    if oid <= 0:
        return EMPTY
    slot = _lookup(idmap, oid)
    if slot == EMPTY:
        return EMPTY
    if (
        orders[slot, O_ACCOUNT] != cmds[i, c.C_ACCOUNT]
        or orders[slot, O_INSTRUMENT] != cmds[i, c.C_INSTRUMENT]
    ):
        return EMPTY
    return slot


@njit(cache=True)
def _command_reject(ev, n, cmds, i, code):
    ev = _room(ev, n, 1)
    n = _put(
        ev,
        n,
        cmds[i, c.C_SEQ],
        EV_CMD_REJECTED,
        cmds[i, c.C_INSTRUMENT],
        cmds[i, c.C_ORDER_ID],
        cmds[i, c.C_ACCOUNT],
        0,
        cmds[i, c.C_PRICE],
        cmds[i, c.C_QTY],
        0,
        0,
        0,
        0,
        code,
        0,
        0,
    )
    return ev, n


@njit(cache=True)
def _cancel(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n):
    slot = _owned_slot(orders, books, idmap, cmds, i)
    if slot == EMPTY:
        return _command_reject(ev, n, cmds, i, RJ_UNKNOWN_ORDER)
    leaves = orders[slot, O_SHOWN] + orders[slot, O_HIDDEN]
    _leave_level(orders, levels, books, seg, g, slot)
    _unindex_and_free(orders, idmap, heap, accounts, g, slot)
    return _order_event(ev, n, cmds[i, c.C_SEQ], EV_CANCELLED, orders, slot, leaves, 0, 0, CR_USER)


@njit(cache=True)
def _replace(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n):
    slot = _owned_slot(orders, books, idmap, cmds, i)
    if slot == EMPTY:
        return _command_reject(ev, n, cmds, i, RJ_UNKNOWN_ORDER)
    instr = orders[slot, O_INSTRUMENT]
    side = orders[slot, O_SIDE]
    price = cmds[i, c.C_PRICE]
    qty = cmds[i, c.C_QTY]
    filled = orders[slot, O_FILLED]
    code = RJ_OK
    if price < books[instr, B_MIN_PRICE] or price > books[instr, B_MAX_PRICE]:
        code = RJ_PRICE_OUT_OF_RANGE
    elif price % books[instr, B_TICK] != 0:
        code = RJ_PRICE_OFF_TICK
    elif qty < books[instr, B_MIN_QTY] or qty > books[instr, B_MAX_QTY]:
        code = RJ_QUANTITY_OUT_OF_RANGE
    elif qty % books[instr, B_LOT] != 0:
        code = RJ_QUANTITY_OFF_LOT
    elif qty <= filled:
        code = RJ_REPLACE_BELOW_FILLED
    elif orders[slot, O_POST_ONLY] == 1 and _would_take(levels, books, seg, instr, side, price):
        code = RJ_POST_ONLY_WOULD_TAKE
    if code != RJ_OK:
        return _command_reject(ev, n, cmds, i, code)
    seq = cmds[i, c.C_SEQ]
    shown = orders[slot, O_SHOWN]
    hidden = orders[slot, O_HIDDEN]
    new_leaves = qty - filled
    if price == orders[slot, O_PRICE] and new_leaves <= shown + hidden:
        cut = shown + hidden - new_leaves
        from_hidden = min(hidden, cut)
        orders[slot, O_HIDDEN] = hidden - from_hidden
        orders[slot, O_SHOWN] = shown - (cut - from_hidden)
        orders[slot, O_QTY] = qty
        levels[orders[slot, O_LEVEL], L_VISIBLE] -= cut - from_hidden
        return _order_event(
            ev, n, seq, EV_REPLACED, orders, slot, qty, new_leaves, orders[slot, O_SHOWN], 0
        )
    _leave_level(orders, levels, books, seg, g, slot)
    orders[slot, O_PRICE] = price
    ev, n = _order_event(ev, n, seq, EV_REPLACED, orders, slot, qty, new_leaves, 0, 0)
    oid = orders[slot, O_ID]
    ev, n, leaves, filled, qty, alive = _take(
        orders,
        levels,
        books,
        seg,
        idmap,
        heap,
        accounts,
        g,
        ev,
        n,
        seq,
        instr,
        side,
        price,
        oid,
        orders[slot, O_ACCOUNT],
        orders[slot, O_STP],
        new_leaves,
        filled,
        qty,
    )
    if not alive or leaves == 0:
        orders[slot, O_SHOWN] = 0
        orders[slot, O_HIDDEN] = 0
        _unindex_and_free(orders, idmap, heap, accounts, g, slot)
        return ev, n
    display = orders[slot, O_DISPLAY]
    shown = min(display, leaves) if display > 0 else leaves
    orders[slot, O_SHOWN] = shown
    orders[slot, O_HIDDEN] = leaves - shown
    orders[slot, O_FILLED] = filled
    orders[slot, O_QTY] = qty
    _rest(orders, levels, books, seg, g, slot)
    return ev, n


@njit(cache=True)
def _mass_cancel(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n):
    acct = cmds[i, c.C_ACCOUNT]
    instr = cmds[i, c.C_INSTRUMENT]
    if acct < 0 or acct >= g[G_MAX_ACCOUNTS]:
        return _command_reject(ev, n, cmds, i, RJ_INVALID_ACCOUNT)
    if instr != -1 and (instr < 0 or instr >= books.shape[0] or books[instr, B_ACTIVE] == 0):
        return _command_reject(ev, n, cmds, i, RJ_UNKNOWN_INSTRUMENT)
    count = 0
    head = accounts[acct] if acct < accounts.shape[0] else EMPTY
    slot = head
    while slot != EMPTY:
        if instr == -1 or orders[slot, O_INSTRUMENT] == instr:
            count += 1
        slot = orders[slot, O_ANEXT]
    ids = np.empty(count, dtype=np.int64)
    k = 0
    slot = head
    while slot != EMPTY:
        if instr == -1 or orders[slot, O_INSTRUMENT] == instr:
            ids[k] = orders[slot, O_ID]
            k += 1
        slot = orders[slot, O_ANEXT]
    ids.sort()
    seq = cmds[i, c.C_SEQ]
    ev = _room(ev, n, count + 1)
    for k in range(count):
        slot = _lookup(idmap, ids[k])
        leaves = orders[slot, O_SHOWN] + orders[slot, O_HIDDEN]
        _leave_level(orders, levels, books, seg, g, slot)
        _unindex_and_free(orders, idmap, heap, accounts, g, slot)
        ev, n = _order_event(ev, n, seq, EV_CANCELLED, orders, slot, leaves, 0, 0, CR_MASS)
    n = _put(ev, n, seq, EV_MASS_DONE, instr, 0, acct, 0, 0, count, 0, 0, 0, 0, 0, 0, 0)
    return ev, n


@njit(cache=True)
def _expire_due(orders, levels, books, seg, idmap, heap, accounts, g, seq, ev, n):
    now = g[G_NOW]
    while g[G_HEAP_N] > 0:
        slot = heap[0]
        if orders[slot, O_EXPIRE] > now:
            break
        leaves = orders[slot, O_SHOWN] + orders[slot, O_HIDDEN]
        _leave_level(orders, levels, books, seg, g, slot)
        _unindex_and_free(orders, idmap, heap, accounts, g, slot)
        ev, n = _order_event(ev, n, seq, EV_EXPIRED, orders, slot, leaves, 0, 0, 0)
    return ev, n


@njit(cache=True)
def _segment_must_move_but_cannot(books, seg, g, instr, s) -> bool:
    cap = books[instr, B_SEG_CAP + 3 * s]
    full = books[instr, B_SEG_LEN + 3 * s] == cap
    return full and g[G_SEG_HWM] + max(MIN_SEGMENT, 2 * cap) > seg.shape[0]


@njit(cache=True)
def _needs_growth(orders, books, seg, accounts, g, cmds, i) -> int:
    kind = cmds[i, c.C_KIND]
    if kind != NEW_ORDER and kind != REPLACE_ORDER:
        return DONE
    if kind == NEW_ORDER:
        if g[G_FREE_ORDER] == EMPTY and orders.shape[0] < g[G_MAX_ORDERS]:
            return GROW_ORDERS
        acct = cmds[i, c.C_ACCOUNT]
        if accounts.shape[0] <= acct < g[G_MAX_ACCOUNTS]:
            return GROW_ACCOUNTS
    instr = cmds[i, c.C_INSTRUMENT]
    if 0 <= instr < books.shape[0]:
        for s in range(2):
            if _segment_must_move_but_cannot(books, seg, g, instr, s):
                return GROW_SEGMENTS
    return DONE


@njit(cache=True)
def run_batch(state, cmds, start, end, ev, n):
    """Process ``cmds[start:end]``; returns ``(status, next index, event buffer, events)``.

    A status other than DONE means the command at ``next index`` needs a bigger pool;
    nothing of it has been applied, so the caller grows the pool and calls again.
    """
    orders, levels, books, seg, idmap, heap, accounts, g = state
    for i in range(start, end):
        need = _needs_growth(orders, books, seg, accounts, g, cmds, i)
        if need != DONE:
            return need, i, ev, n
        if cmds[i, c.C_TS] > g[G_NOW]:
            g[G_NOW] = cmds[i, c.C_TS]
        if g[G_HEAP_N] > 0:
            ev, n = _expire_due(
                orders, levels, books, seg, idmap, heap, accounts, g, cmds[i, c.C_SEQ], ev, n
            )
        kind = cmds[i, c.C_KIND]
        if kind == NEW_ORDER:
            ev, n = _new_order(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n)
        elif kind == CANCEL_ORDER:
            ev, n = _cancel(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n)
        elif kind == REPLACE_ORDER:
            ev, n = _replace(orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n)
        elif kind == MASS_CANCEL:
            ev, n = _mass_cancel(
                orders, levels, books, seg, idmap, heap, accounts, g, cmds, i, ev, n
            )
        elif kind != CLOCK_TICK:
            ev, n = _command_reject(ev, n, cmds, i, RJ_INVALID_COMMAND)
    return DONE, end, ev, n


# =========================================================================================
# Queries, snapshot and restore
# =========================================================================================
@njit(cache=True)
def depth(state, instr, side, max_levels):
    """Top levels of one side as (price, visible qty, order count) rows, best first."""
    levels, books, seg = state[1], state[2], state[3]
    s = side - 1
    start = books[instr, B_SEG_START + 3 * s]
    nlev = books[instr, B_SEG_LEN + 3 * s]
    k = min(nlev, max_levels)
    out = np.empty((k, 3), dtype=np.int64)
    for j in range(k):
        lvl = seg[start + nlev - 1 - j, 1]
        out[j, 0] = levels[lvl, L_PRICE]
        out[j, 1] = levels[lvl, L_VISIBLE]
        out[j, 2] = levels[lvl, L_COUNT]
    return out


@njit(cache=True)
def level_order_ids(state, instr, side, price):
    orders, levels, books, seg = state[0], state[1], state[2], state[3]
    lvl = _find_level(books, seg, instr, side, price)
    if lvl == EMPTY:
        return np.empty(0, dtype=np.int64)
    out = np.empty(levels[lvl, L_COUNT], dtype=np.int64)
    slot = levels[lvl, L_HEAD]
    k = 0
    while slot != EMPTY:
        out[k] = orders[slot, O_ID]
        k += 1
        slot = orders[slot, O_NEXT]
    return out


@njit(cache=True)
def snapshot_orders(state):
    """Resting orders in canonical order: instrument, bids then asks, best first, FIFO."""
    orders, levels, books, seg, g = state[0], state[1], state[2], state[3], state[7]
    out = np.empty((g[G_LIVE], c.N_SNAPSHOT_FIELDS), dtype=np.int64)
    k = 0
    for instr in range(books.shape[0]):
        if books[instr, B_ACTIVE] == 0:
            continue
        for s in range(2):
            start = books[instr, B_SEG_START + 3 * s]
            nlev = books[instr, B_SEG_LEN + 3 * s]
            for pos in range(start + nlev - 1, start - 1, -1):
                slot = levels[seg[pos, 1], L_HEAD]
                while slot != EMPTY:
                    out[k, c.S_INSTRUMENT] = instr
                    out[k, c.S_SIDE] = s + 1
                    out[k, c.S_PRICE] = orders[slot, O_PRICE]
                    out[k, c.S_ORDER_ID] = orders[slot, O_ID]
                    out[k, c.S_ACCOUNT] = orders[slot, O_ACCOUNT]
                    out[k, c.S_QTY] = orders[slot, O_QTY]
                    out[k, c.S_FILLED] = orders[slot, O_FILLED]
                    out[k, c.S_SHOWN] = orders[slot, O_SHOWN]
                    out[k, c.S_HIDDEN] = orders[slot, O_HIDDEN]
                    out[k, c.S_DISPLAY] = orders[slot, O_DISPLAY]
                    out[k, c.S_TIF] = orders[slot, O_TIF]
                    out[k, c.S_STP] = orders[slot, O_STP]
                    out[k, c.S_POST_ONLY] = orders[slot, O_POST_ONLY]
                    out[k, c.S_EXPIRE_TS] = orders[slot, O_EXPIRE]
                    k += 1
                    slot = orders[slot, O_NEXT]
    return out


@njit(cache=True)
def load_orders(state, rows, start):
    """Append snapshot rows from ``start``; returns (status, next row) like ``run_batch``."""
    orders, levels, books, seg, idmap, heap, accounts, g = state
    for k in range(start, rows.shape[0]):
        instr = rows[k, c.S_INSTRUMENT]
        if g[G_FREE_ORDER] == EMPTY:
            return GROW_ORDERS, k
        if rows[k, c.S_ACCOUNT] >= accounts.shape[0]:
            return GROW_ACCOUNTS, k
        for s in range(2):
            if _segment_must_move_but_cannot(books, seg, g, instr, s):
                return GROW_SEGMENTS, k
        slot = g[G_FREE_ORDER]
        g[G_FREE_ORDER] = orders[slot, O_NEXT]
        orders[slot, O_ID] = rows[k, c.S_ORDER_ID]
        orders[slot, O_ACCOUNT] = rows[k, c.S_ACCOUNT]
        orders[slot, O_SHOWN] = rows[k, c.S_SHOWN]
        orders[slot, O_HIDDEN] = rows[k, c.S_HIDDEN]
        orders[slot, O_FILLED] = rows[k, c.S_FILLED]
        orders[slot, O_QTY] = rows[k, c.S_QTY]
        orders[slot, O_PRICE] = rows[k, c.S_PRICE]
        orders[slot, O_INSTRUMENT] = instr
        orders[slot, O_SIDE] = rows[k, c.S_SIDE]
        orders[slot, O_DISPLAY] = rows[k, c.S_DISPLAY]
        orders[slot, O_TIF] = rows[k, c.S_TIF]
        orders[slot, O_STP] = rows[k, c.S_STP]
        orders[slot, O_POST_ONLY] = rows[k, c.S_POST_ONLY]
        orders[slot, O_EXPIRE] = rows[k, c.S_EXPIRE_TS]
        _rest(orders, levels, books, seg, g, slot)
        _index(orders, idmap, heap, accounts, g, slot)
    return DONE, rows.shape[0]

"""Risk state: preallocated int64 arrays, grown by doubling, hashed and snapshotted.

The arrays are what the numba kernel works on (``risk.kernel``); this module creates them
from a ``RiskConfig``, grows them when the kernel asks, and turns them into a canonical
view (for comparing with the reference model) and into bytes (for snapshots).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from matching import hugepages
from risk import codes as r
from risk.config import RiskConfig
from risk.kernel import rehash_positions


class RiskArrays(NamedTuple):
    """The risk arrays as the kernels take them (``rs`` in ``risk.kernel``). A named tuple
    of arrays compiles to a plain struct: ``rs.accounts`` costs what ``rs[0]`` did.
    Row layouts are the ``risk.codes`` constants named in each comment."""

    accounts: np.ndarray  # [account, A_*]
    balances: np.ndarray  # [account, asset]: base units held
    instruments: np.ndarray  # [instrument, I_*]
    assets: np.ndarray  # [asset, K_*]
    positions: np.ndarray  # [row, P_*]: one row per (account, instrument), found via pmap
    pmap: np.ndarray  # (key, row + 1) pairs: open addressing on account << 20 | instrument
    globals: np.ndarray  # [G_*]


ARRAY_NAMES = RiskArrays._fields


@dataclass
class RiskState:
    """The risk arrays; ``arrays`` is what the kernel takes."""

    accounts: np.ndarray
    balances: np.ndarray
    instruments: np.ndarray
    assets: np.ndarray
    positions: np.ndarray
    pmap: np.ndarray
    globals: np.ndarray

    @classmethod
    def create(
        cls, config: RiskConfig, accounts: int = 1024, instruments: int = 16, positions: int = 4096
    ) -> RiskState:
        k = len(config.assets)
        state = cls(
            accounts=hugepages.zeros((accounts, r.AF), np.int64),
            balances=hugepages.zeros((accounts, k), np.int64),
            instruments=hugepages.zeros((instruments, r.IF), np.int64),
            assets=hugepages.zeros((k, r.KF), np.int64),
            positions=hugepages.zeros((positions, r.PF), np.int64),
            pmap=hugepages.zeros(4 * positions, np.int64),  # (key, row + 1) pairs
            globals=hugepages.zeros(r.GF, np.int64),
        )
        for i, a in enumerate(config.assets):
            state.assets[i, r.K_DECIMALS] = a.decimals
            state.assets[i, r.K_HAIRCUT_BPS] = a.haircut_bps
            state.assets[i, r.K_MAX_AGE] = a.max_age_s
            state.assets[i, r.K_MAX_CONF_BPS] = a.max_conf_bps
        g = state.globals
        g[r.G_TAKER_BPS] = config.taker_fee_bps
        g[r.G_MAKER_BPS] = config.maker_fee_bps
        g[r.G_BAND_BPS] = config.price_band_bps
        for role, lim in config.limits.items():
            base = r.G_LIMITS + 4 * int(role)
            g[base : base + 4] = (
                lim.max_order_qty,
                lim.max_order_notional,
                lim.max_open_orders,
                lim.max_position,
            )
        fee = state.accounts[r.FEE_ACCOUNT]
        fee[r.A_OPEN] = 1
        fee[r.A_ROLE] = int(r.Role.OPERATOR)
        fee[r.A_MAX_QTY : r.A_MAX_POSITION + 1] = g[
            r.G_LIMITS + 4 * int(r.Role.OPERATOR) : r.G_LIMITS + 4 * int(r.Role.OPERATOR) + 4
        ]
        return state

    @property
    def arrays(self) -> RiskArrays:
        return RiskArrays(*(getattr(self, name) for name in ARRAY_NAMES))

    # -- growth ------------------------------------------------------------------------------

    def grow_accounts(self, needed: int) -> None:
        cap = self.accounts.shape[0]
        while cap <= needed:
            cap *= 2
        self.accounts = _extend(self.accounts, cap)
        self.balances = _extend(self.balances, cap)

    def grow_instruments(self, needed: int) -> None:
        cap = self.instruments.shape[0]
        while cap <= needed:
            cap *= 2
        self.instruments = _extend(self.instruments, cap)

    def grow_positions(self) -> None:
        cap = self.positions.shape[0] * 2
        self.positions = _extend(self.positions, cap)
        self.pmap = hugepages.zeros(4 * cap, np.int64)
        rehash_positions(self.positions, int(self.globals[r.G_POSITIONS]), self.pmap)

    # -- views, hashing, snapshots -------------------------------------------------------------

    def used(self) -> dict[str, np.ndarray]:
        """The arrays trimmed to what is in use: capacity never changes the state's meaning."""
        accounts_used = _rows_used(self.accounts[:, r.A_OPEN])
        instruments_used = _rows_used(self.instruments[:, r.I_LISTED])
        return {
            "accounts": self.accounts[:accounts_used],
            "balances": self.balances[:accounts_used],
            "instruments": self.instruments[:instruments_used],
            "assets": self.assets,
            "positions": self.positions[: int(self.globals[r.G_POSITIONS])],
            "globals": self.globals,
        }

    def state_hash(self) -> str:
        h = hashlib.blake2b(digest_size=32)
        for name, arr in self.used().items():
            h.update(name.encode())
            h.update(np.int64(arr.shape[0]).tobytes())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **self.used())  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, config: RiskConfig) -> RiskState:
        with np.load(io.BytesIO(data)) as z:
            used = {name: z[name] for name in z.files}
        n_pos = int(used["globals"][r.G_POSITIONS])
        state = cls.create(
            config,
            accounts=_capacity(used["accounts"].shape[0]),
            instruments=_capacity(used["instruments"].shape[0]),
            positions=_capacity(n_pos + 1, 4096),
        )
        if used["assets"].shape != state.assets.shape:
            raise ValueError("snapshot was taken under a different asset configuration")
        state.accounts[: used["accounts"].shape[0]] = used["accounts"]
        state.balances[: used["balances"].shape[0]] = used["balances"]
        state.instruments[: used["instruments"].shape[0]] = used["instruments"]
        state.assets[:] = used["assets"]
        state.positions[:n_pos] = used["positions"]
        state.globals[:] = used["globals"]
        rehash_positions(state.positions, n_pos, state.pmap)
        return state

    def view(self) -> dict:
        """A canonical, plain-Python picture of the state (what the reference model keeps)."""
        u = self.used()
        accounts = {
            i: tuple(int(x) for x in row[1:])
            for i, row in enumerate(u["accounts"])
            if row[r.A_OPEN]
        }
        balances = {
            (i, k): int(v)
            for i, row in enumerate(u["balances"])
            for k, v in enumerate(row)
            if v != 0
        }
        instruments = {
            i: tuple(int(x) for x in row[1:])
            for i, row in enumerate(u["instruments"])
            if row[r.I_LISTED]
        }
        positions = {
            (
                int(row[r.P_KEY]) >> r.INSTRUMENT_BITS,
                int(row[r.P_KEY]) & ((1 << r.INSTRUMENT_BITS) - 1),
            ): tuple(int(x) for x in row[1:])
            for row in u["positions"]
            if any(row[1:])
        }
        return {
            "accounts": accounts,
            "balances": balances,
            "instruments": instruments,
            "assets": [tuple(int(x) for x in row) for row in u["assets"]],
            "positions": positions,
            "kill_all": int(self.globals[r.G_KILL_ALL]),
        }


def _extend(a: np.ndarray, rows: int) -> np.ndarray:
    out = hugepages.zeros((rows, *a.shape[1:]), a.dtype)
    out[: a.shape[0]] = a
    return out


def _rows_used(flags: np.ndarray) -> int:
    nz = np.flatnonzero(flags)
    return int(nz[-1]) + 1 if nz.size else 0


def _capacity(rows: int, minimum: int = 16) -> int:
    cap = minimum
    while cap < rows:
        cap *= 2
    return cap

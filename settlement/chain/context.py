"""What every chain component shares: the RPC client, the authority, the mints, and the
deployment id that scopes marker accounts to this database.

``bootstrap`` prepares it idempotently. On the embedded runtime it funds the authority
(airdrop) and creates the mints (USDC-like with 6 decimals, SOL collateral with 9) the
first time, recording them in ``chain_mints``; on a real cluster it takes the configured
mints and checks that they exist with the decimals the exchange expects.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from risk.config import RiskConfig
from settlement.chain import programs
from settlement.chain.config import ChainConfig
from settlement.chain.direct import send_and_wait
from settlement.chain.errors import ChainError, ChainErrorCode
from settlement.chain.rpc import ChainRpc

log = logging.getLogger(__name__)

_MINT_DECIMALS = 44  # offset of the decimals byte in an SPL mint
MIN_AUTHORITY_LAMPORTS = 10**9


@dataclass(frozen=True, slots=True)
class Mint:
    asset: int
    address: Pubkey
    decimals: int


@dataclass
class ChainContext:
    rpc: ChainRpc
    authority: Keypair
    deployment: str
    mints: dict[int, Mint]
    local: bool

    @property
    def authority_key(self) -> Pubkey:
        return self.authority.pubkey()

    @property
    def marker_owner(self) -> Pubkey:
        return programs.marker_owner(self.authority_key, self.deployment)

    def mint(self, asset: int) -> Mint:
        try:
            return self.mints[asset]
        except KeyError:
            raise ChainError(ChainErrorCode.NO_MINT, f"no mint for asset {asset}") from None


async def bootstrap(
    pool: asyncpg.Pool,
    rpc: ChainRpc,
    authority: Keypair,
    config: ChainConfig,
    risk: RiskConfig,
    *,
    local: bool,
) -> ChainContext:
    """The deployment, the authority topped up (local runtime) and the mints, with their
    decimals from ``risk``'s assets."""
    deployment = await _deployment(pool, authority.pubkey())
    if local:
        await top_up(rpc, authority.pubkey(), config.local_airdrop_lamports)
    mints = await _mints(pool, rpc, authority, config, risk, local)
    log.info(
        "chain settlement: authority %s, deployment %s, mints %s",
        authority.pubkey(),
        deployment,
        {a: str(m.address) for a, m in mints.items()},
    )
    return ChainContext(rpc, authority, deployment, mints, local)


async def _deployment(pool: asyncpg.Pool, authority: Pubkey) -> str:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO chain_meta (key, value) VALUES ('deployment', $1), ('authority', $2)"
            " ON CONFLICT (key) DO NOTHING",
            secrets.token_hex(8),
            str(authority),
        )
        rows = dict(await conn.fetch("SELECT key, value FROM chain_meta"))
    if rows["authority"] != str(authority):
        raise ChainError(
            ChainErrorCode.AUTHORITY_MISSING,
            f"this database was set up for authority {rows['authority']}, "
            f"the configured key is {authority}",
        )
    return rows["deployment"]


async def top_up(rpc: ChainRpc, authority: Pubkey, lamports: int) -> None:
    """Local runtime: airdrop fees and marker rent to the authority when it runs low."""
    if await rpc.balance(authority) < MIN_AUTHORITY_LAMPORTS:
        await rpc.airdrop(authority, lamports)


async def _mints(
    pool: asyncpg.Pool,
    rpc: ChainRpc,
    authority: Keypair,
    config: ChainConfig,
    risk: RiskConfig,
    local: bool,
) -> dict[int, Mint]:
    known = {
        r["asset_id"]: Mint(r["asset_id"], Pubkey.from_string(r["mint"]), r["decimals"])
        for r in await pool.fetch("SELECT asset_id, mint, decimals FROM chain_mints")
    }
    wanted: dict[int, Pubkey | None] = {a: None for a in config.local_assets} if local else {}
    wanted.update({a: Pubkey.from_string(m) for a, m in config.settlement_mints.items()})
    for asset, address in wanted.items():
        if not 0 <= asset < len(risk.assets):
            raise ChainError(ChainErrorCode.NO_MINT, f"unknown asset {asset}")
        decimals = risk.assets[asset].decimals
        if asset in known:
            if address is not None and address != known[asset].address:
                raise ChainError(
                    ChainErrorCode.NO_MINT,
                    f"asset {asset}: configured mint {address}, this database uses "
                    f"{known[asset].address}",
                )
            address = known[asset].address
        elif address is None:
            address, ixs = programs.create_mint(authority.pubkey(), f"cx-mint:{asset}", decimals)
            if (await rpc.accounts([address]))[0] is None:
                await send_and_wait(rpc, authority, ixs)
        data = (await rpc.accounts([address]))[0]
        if data is None or data[_MINT_DECIMALS] != decimals:
            raise ChainError(
                ChainErrorCode.NO_MINT,
                f"asset {asset}: {address} is not a mint with {decimals} decimals",
            )
        await pool.execute(
            "INSERT INTO chain_mints (asset_id, mint, decimals, local) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (asset_id) DO NOTHING",
            asset,
            str(address),
            decimals,
            local and asset not in config.settlement_mints,
        )
        known[asset] = Mint(asset, address, decimals)
    return known

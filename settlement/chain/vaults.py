"""The exchange's vaults: a token account per (account, asset), an escrow and a fee vault
per asset, all owned by the settlement authority (proof of reserves per account).

Addresses are derived from the authority and a seed (``programs.vault_seed``), so they are
known before they exist; ``ensure`` records them in Postgres and creates whichever are
missing on chain. Both steps are idempotent, so it can run at every start and for every
newly opened account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from solders.instruction import Instruction
from solders.pubkey import Pubkey

from risk.codes import FEE_ACCOUNT
from settlement.chain import programs
from settlement.chain.context import ChainContext
from settlement.chain.direct import send_and_wait
from settlement.chain.errors import ChainError, ChainErrorCode
from settlement.chain.netting import VaultRef
from settlement.chain.txsize import TxSizer

CREATE_CONCURRENCY = 8  # vault-creating transactions in flight at once


@dataclass(frozen=True, slots=True)
class Vault:
    ref: VaultRef
    address: Pubkey
    seed: str


class Vaults:
    def __init__(self, pool: asyncpg.Pool, ctx: ChainContext) -> None:
        self._pool = pool
        self._ctx = ctx
        self._by_ref: dict[VaultRef, Vault] = {}
        self._by_address: dict[str, Vault] = {}
        self._on_chain: set[VaultRef] = set()  # seen to exist by this process

    def derive(self, ref: VaultRef) -> Vault:
        if ref.kind == "account" and ref.account == FEE_ACCOUNT:
            raise ChainError(
                ChainErrorCode.UNKNOWN_VAULT, "account 0 is the fee account: use the fee vault"
            )
        seed = programs.vault_seed(ref.kind, ref.account, ref.asset)
        return Vault(ref, programs.vault_address(self._ctx.authority_key, seed), seed)

    def get(self, ref: VaultRef) -> Vault:
        vault = self._by_ref.get(ref)
        if vault is None:
            raise ChainError(ChainErrorCode.UNKNOWN_VAULT, f"no vault recorded for {ref}")
        return vault

    def by_address(self, address: str) -> Vault | None:
        return self._by_address.get(address)

    def all(self) -> list[Vault]:
        return list(self._by_ref.values())

    async def load(self) -> None:
        """Read the recorded vaults (each start, before anything else looks one up)."""
        rows = await self._pool.fetch(
            "SELECT address, kind, account_id, asset_id, seed FROM chain_vaults"
        )
        for r in rows:
            ref = VaultRef(r["kind"], r["account_id"], r["asset_id"])
            self._remember(Vault(ref, Pubkey.from_string(r["address"]), r["seed"]))

    def _remember(self, vault: Vault) -> None:
        self._by_ref[vault.ref] = vault
        self._by_address[str(vault.address)] = vault

    async def ensure(self, accounts: Iterable[int] = ()) -> list[Vault]:
        """Escrow and fee vaults of every asset with a mint, and ``accounts``' vaults."""
        refs: list[VaultRef] = []
        for asset in sorted(self._ctx.mints):
            refs += [VaultRef.escrow(asset), VaultRef.fee(asset)]
            refs += [VaultRef.of_account(a, asset) for a in sorted(set(accounts))]
        vaults = [self._by_ref.get(ref) or self.derive(ref) for ref in refs]
        unchecked = [v for v in vaults if v.ref not in self._on_chain]
        if unchecked:
            await self._record([v for v in unchecked if v.ref not in self._by_ref])
            exists = await self._ctx.rpc.exists([v.address for v in unchecked])
            await self._create([v for v, ok in zip(unchecked, exists, strict=True) if not ok])
            for v in unchecked:
                self._remember(v)
                self._on_chain.add(v.ref)
        return vaults

    async def _record(self, vaults: list[Vault]) -> None:
        if not vaults:
            return
        await self._pool.executemany(
            "INSERT INTO chain_vaults (address, kind, account_id, asset_id, seed)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (address) DO NOTHING",
            [(str(v.address), v.ref.kind, v.ref.account, v.ref.asset, v.seed) for v in vaults],
        )

    async def _create(self, vaults: list[Vault]) -> None:
        authority = self._ctx.authority_key
        groups: list[list[Instruction]] = []
        sizer, current = TxSizer(authority), list[Instruction]()
        for v in vaults:
            ixs = programs.create_vault(authority, v.seed, self._ctx.mint(v.ref.asset).address)
            if current and not sizer.fits(ixs):
                groups.append(current)
                sizer, current = TxSizer(authority), []
            sizer.add(ixs)
            current += ixs
        if current:
            groups.append(current)
        gate = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def one(ixs: list[Instruction]) -> None:
            async with gate:
                await send_and_wait(self._ctx.rpc, self._ctx.authority, ixs)

        results = await asyncio.gather(*(one(ixs) for ixs in groups), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        if vaults:
            exists = await self._ctx.rpc.exists([v.address for v in vaults])
            absent = [v.seed for v, ok in zip(vaults, exists, strict=True) if not ok]
            if absent:
                raise ChainError(ChainErrorCode.UNKNOWN_VAULT, f"could not create vaults {absent}")

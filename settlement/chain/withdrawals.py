"""Withdrawals: reserve in the engine, pay out on chain to a registered wallet only.

``request`` records the withdrawal, then a ``Withdraw(account, asset, amount, ref=id)``
debits the balance in the engine, which refuses it beyond the available balance. Only then
is the transfer planned, from the account's vault to the token account of a wallet the
account registered beforehand (the allow-list): the destination is derived from the
registered wallet, never taken from the request. The ``Sender`` lands it (marker
``wd:<id>``: it can never pay twice); its confirmation completes the withdrawal. A transfer
that can never land is failed by the sender, and ``release_failed`` gives the balance back
with a compensating ``Deposit`` carrying the same ref.

Each step is recorded before the next, and a crash between a command and its recorded
outcome is resolved from the engine's event log by ref (``recover``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg
from solders.pubkey import Pubkey

from exchange.codes import CommandKind, reason
from exchange.commands import Deposit, Withdraw
from exchange.ids import AccountId, AssetId
from settlement.chain import programs
from settlement.chain.context import ChainContext
from settlement.chain.engine_io import (
    EngineSeq,
    EventSource,
    Outcome,
    Submit,
    find_outcomes,
    outcomes,
    submit_command,
)
from settlement.chain.errors import ChainError, ChainErrorCode
from settlement.chain.netting import VaultRef
from settlement.chain.sender import PlannedTransfer, record_tx
from settlement.chain.vaults import Vaults

log = logging.getLogger(__name__)

MAX_AMOUNT = 1 << 62  # the engine's largest amount (risk.kernel MAX_AMOUNT)


class WithdrawalRefused(ChainError):
    """The engine refused the Withdraw command (``reason`` is its RejectCode)."""

    def __init__(self, withdrawal_id: int, code: int) -> None:
        super().__init__(
            ChainErrorCode.WITHDRAWAL_REFUSED, f"withdrawal {withdrawal_id}: {reason(code)}"
        )
        self.withdrawal_id = withdrawal_id
        self.reason = code


@dataclass(frozen=True, slots=True)
class Withdrawal:
    withdrawal_id: int
    account: int
    asset: int
    amount: int
    wallet: str
    destination: str
    state: str
    seq: int | None
    release_seq: int | None
    reason: int | None
    error: str | None


class Withdrawals:
    def __init__(
        self,
        pool: asyncpg.Pool,
        ctx: ChainContext,
        vaults: Vaults,
        submit: Submit,
        events: EventSource,
        engine_seq: EngineSeq | None = None,
    ) -> None:
        self._pool = pool
        self._ctx = ctx
        self._vaults = vaults
        self._submit = submit
        self._events = events
        self._engine_seq = engine_seq

    def _until(self) -> int | None:
        return self._engine_seq() if self._engine_seq else None

    # -- the allow-list ------------------------------------------------------------------------

    async def register_wallet(self, account: int, asset: int, owner: str) -> str:
        """Allow withdrawals of ``asset`` from ``account`` to the wallet ``owner``; returns
        the wallet's token account (where the tokens will go)."""
        key = _pubkey(owner)
        destination = programs.wallet_token_account(key, self._ctx.mint(asset).address)
        await self._pool.execute(
            "INSERT INTO chain_wallets (account_id, asset_id, owner, token_account)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            account,
            asset,
            str(key),
            str(destination),
        )
        return str(destination)

    async def wallets(self, account: int, asset: int) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT owner FROM chain_wallets WHERE account_id = $1 AND asset_id = $2"
            " ORDER BY owner",
            account,
            asset,
        )
        return [r["owner"] for r in rows]

    # -- requests ------------------------------------------------------------------------------

    async def request(self, account: int, asset: int, amount: int, wallet: str) -> Withdrawal:
        """Reserve ``amount`` and plan its transfer to ``wallet`` (which must be registered).

        Raises ``ChainError`` (wallet not registered, bad amount, no vault) before anything
        is recorded, and ``WithdrawalRefused`` when the engine refuses the debit.
        """
        if not 0 < amount <= MAX_AMOUNT:
            raise ChainError(ChainErrorCode.INVALID_AMOUNT, f"amount {amount} outside 1..2^62")
        owner = str(_pubkey(wallet))
        destination = await self._pool.fetchval(
            "SELECT token_account FROM chain_wallets"
            " WHERE account_id = $1 AND asset_id = $2 AND owner = $3",
            account,
            asset,
            owner,
        )
        if destination is None:
            raise ChainError(
                ChainErrorCode.WALLET_NOT_REGISTERED,
                f"{owner} is not a registered wallet of account {account} for asset {asset}",
            )
        self._vaults.get(VaultRef.of_account(account, asset))  # refuses an account without one
        withdrawal_id = await self._pool.fetchval(
            "INSERT INTO chain_withdrawals (withdrawal_id, account_id, asset_id, amount, wallet,"
            " destination, state, after_seq) VALUES (nextval('chain_withdrawal_ids'),"
            " $1, $2, $3, $4, $5, 'requested', $6) RETURNING withdrawal_id",
            account,
            asset,
            amount,
            owner,
            destination,
            self._events.last_seq,
        )
        rows = await submit_command(
            self._submit,
            Withdraw(
                account=AccountId(account), asset=AssetId(asset), amount=amount, ref=withdrawal_id
            ),
        )
        outcome = outcomes(rows, CommandKind.WITHDRAW, [withdrawal_id])[withdrawal_id]
        await self._settle_request(withdrawal_id, outcome)
        if not outcome.ok:
            raise WithdrawalRefused(withdrawal_id, outcome.reason)
        return await self.get(withdrawal_id)

    async def _settle_request(self, withdrawal_id: int, outcome: Outcome) -> None:
        """Record the Withdraw command's outcome; when reserved, plan the transfer in the
        same Postgres transaction, so a reserved withdrawal always has its transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            w = await conn.fetchrow(
                "UPDATE chain_withdrawals SET state = $2, seq = $3, reason = $4, updated_at = now()"
                " WHERE withdrawal_id = $1 AND state = 'requested'"
                " RETURNING account_id, asset_id, amount, destination",
                withdrawal_id,
                "reserved" if outcome.ok else "refused",
                outcome.seq,
                None if outcome.ok else outcome.reason,
            )
            if w is None or not outcome.ok:
                return
            vault = self._vaults.get(VaultRef.of_account(w["account_id"], w["asset_id"]))
            transfer = PlannedTransfer(
                vault.address, Pubkey.from_string(w["destination"]), w["asset_id"], w["amount"]
            )
            await record_tx(
                conn,
                purpose="withdrawal",
                marker=programs.withdrawal_marker_seed(withdrawal_id),
                memo=f"cx withdraw id={withdrawal_id} account={w['account_id']}"
                f" asset={w['asset_id']} amount={w['amount']}",
                transfers=[transfer],
                withdrawal_id=withdrawal_id,
            )

    async def get(self, withdrawal_id: int) -> Withdrawal:
        r = await self._pool.fetchrow(
            "SELECT withdrawal_id, account_id, asset_id, amount, wallet, destination, state,"
            " seq, release_seq, reason, error FROM chain_withdrawals WHERE withdrawal_id = $1",
            withdrawal_id,
        )
        if r is None:
            raise KeyError(f"no withdrawal {withdrawal_id}")
        return Withdrawal(*r)

    # -- after the chain ---------------------------------------------------------------------------

    async def release_failed(self) -> list[int]:
        """Give back the balance of every failed withdrawal (a Deposit with its ref)."""
        rows = await self._pool.fetch(
            "SELECT withdrawal_id, account_id, asset_id, amount, seq FROM chain_withdrawals"
            " WHERE state = 'failed' ORDER BY withdrawal_id"
        )
        if not rows:
            return []
        already = await find_outcomes(
            self._events,
            CommandKind.DEPOSIT,
            {r["withdrawal_id"] for r in rows},
            min(r["seq"] for r in rows),
            until=self._until(),
        )
        released = []
        for r in rows:
            wid = r["withdrawal_id"]
            outcome = already.get(wid)
            if outcome is None:
                command = Deposit(
                    account=AccountId(r["account_id"]),
                    asset=AssetId(r["asset_id"]),
                    amount=r["amount"],
                    ref=wid,
                )
                events = await submit_command(self._submit, command)
                outcome = outcomes(events, CommandKind.DEPOSIT, [wid])[wid]
            if not outcome.ok:
                log.error("withdrawal %d: the release was refused (code %d)", wid, outcome.reason)
            await self._pool.execute(
                "UPDATE chain_withdrawals SET state = 'released', release_seq = $2,"
                " reason = coalesce(reason, $3), updated_at = now() WHERE withdrawal_id = $1",
                wid,
                outcome.seq,
                None if outcome.ok else outcome.reason,
            )
            released.append(wid)
        return released

    async def recover(self) -> None:
        """Resolve requests a crash left between the Withdraw command and its outcome."""
        rows = await self._pool.fetch(
            "SELECT withdrawal_id, after_seq FROM chain_withdrawals WHERE state = 'requested'"
        )
        if rows:
            found = await find_outcomes(
                self._events,
                CommandKind.WITHDRAW,
                {r["withdrawal_id"] for r in rows},
                min(r["after_seq"] for r in rows),
                until=self._until(),
            )
            for r in rows:
                outcome = found.get(r["withdrawal_id"])
                if outcome is None:
                    # Never journaled, so nothing was reserved: the request did not happen.
                    await self._pool.execute(
                        "UPDATE chain_withdrawals SET state = 'cancelled', updated_at = now()"
                        " WHERE withdrawal_id = $1 AND state = 'requested'",
                        r["withdrawal_id"],
                    )
                else:
                    await self._settle_request(r["withdrawal_id"], outcome)
        await self.release_failed()


def _pubkey(text: str) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except ValueError as exc:
        raise ChainError(
            ChainErrorCode.WALLET_NOT_REGISTERED, f"{text!r} is not an address"
        ) from exc

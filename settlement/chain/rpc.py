"""JSON-RPC to Solana through solana-py, with retries: the only way the exchange talks to a chain.

The embedded runtime and a real cluster answer the same calls, so ``CX_SOLANA_RPC_URL``
can point anywhere. Transport failures and timeouts (the node is down, restarting, or
overloaded) are retried with capped exponential backoff and jitter for ``retry_for``
seconds, then raise ``ChainUnavailable``; callers keep their state in Postgres, so a later
call carries on where this one stopped. A transaction the node refuses is not an RPC
failure: ``send`` classifies the refusal (``SendResult``) because each kind is handled
differently (already landed, blockhash expired, program error).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

import httpx
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed
from solana.rpc.core import RPCException, RPCNoResultException
from solana.rpc.types import TxOpts
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.transaction_status import TransactionConfirmationStatus

from settlement.chain.errors import ChainError, ChainErrorCode, ChainUnavailable
from settlement.chain.programs import token_amount

log = logging.getLogger(__name__)

T = TypeVar("T")

# JSON-RPC error codes a healthy node returns again soon: retry them like a timeout.
_TRANSIENT_CODES = {-32004, -32005, -32007, -32014, -32016, -32603}
MULTIPLE_ACCOUNTS_MAX = 100
SIGNATURE_STATUSES_MAX = 256


class SendKind(Enum):
    SENT = "sent"
    ALREADY_PROCESSED = "already_processed"  # these exact bytes landed before
    BLOCKHASH_EXPIRED = "blockhash_expired"  # can never land: re-sign
    FAILED = "failed"  # the program refused it (simulation); it cannot land as signed now


@dataclass(frozen=True, slots=True)
class SendResult:
    kind: SendKind
    error: str | None = None
    logs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    slot: int
    err: str | None
    confirmed: bool  # confirmed or finalized


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``first * 2**n`` capped at ``cap``, with +-25 % jitter."""

    first: float = 0.05
    cap: float = 2.0
    retry_for: float | None = 60.0  # seconds before giving up; None: forever

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.first * (2**attempt))
        return base * random.uniform(0.75, 1.25)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, SolanaRpcException | httpx.HTTPError | OSError | asyncio.TimeoutError):
        return True
    if isinstance(exc, RPCException) and exc.args:
        code = getattr(exc.args[0], "code", None)
        return code in _TRANSIENT_CODES
    return False


class ChainRpc:
    """The calls settlement makes, each retried; one ``AsyncClient`` per instance."""

    def __init__(
        self,
        url: str,
        *,
        commitment: Commitment = Confirmed,
        timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.commitment = commitment
        self.backoff = backoff or Backoff()
        self._client = AsyncClient(url, commitment=commitment, timeout=timeout)
        self.retries = 0  # transient failures seen (for status and tests)

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> ChainRpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return await fn()
            except Exception as exc:
                if not _transient(exc):
                    raise
                self.retries += 1
                waited = time.monotonic() - started
                limit = self.backoff.retry_for
                if limit is not None and waited >= limit:
                    raise ChainUnavailable(
                        f"{what}: no answer from the RPC node for {waited:.1f} s"
                    ) from exc
                delay = self.backoff.delay(attempt)
                if limit is not None:
                    delay = min(delay, max(0.0, limit - waited))
                log.warning(
                    "%s failed (%s); retry %d in %.2f s",
                    what,
                    type(exc).__name__,
                    attempt + 1,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)

    # -- reads -------------------------------------------------------------------------------

    async def latest_blockhash(self) -> tuple[Hash, int]:
        """A recent blockhash and the last block height at which it is still accepted."""
        resp = await self._call("getLatestBlockhash", lambda: self._client.get_latest_blockhash())
        return resp.value.blockhash, resp.value.last_valid_block_height

    async def block_height(self) -> int:
        resp = await self._call("getBlockHeight", lambda: self._client.get_block_height())
        return resp.value

    async def balance(self, pubkey: Pubkey) -> int:
        resp = await self._call("getBalance", lambda: self._client.get_balance(pubkey))
        return resp.value

    async def accounts(self, pubkeys: Sequence[Pubkey]) -> list[bytes | None]:
        """Each account's data, None where no account exists (chunked by 100)."""
        out: list[bytes | None] = []
        for i in range(0, len(pubkeys), MULTIPLE_ACCOUNTS_MAX):
            chunk = list(pubkeys[i : i + MULTIPLE_ACCOUNTS_MAX])
            resp = await self._call(
                "getMultipleAccounts", functools.partial(self._client.get_multiple_accounts, chunk)
            )
            out.extend(None if a is None else bytes(a.data) for a in resp.value)
        return out

    async def exists(self, pubkeys: Sequence[Pubkey]) -> list[bool]:
        return [data is not None for data in await self.accounts(pubkeys)]

    async def token_balances(self, pubkeys: Sequence[Pubkey]) -> list[int | None]:
        """Each token account's balance in base units; None if it does not exist."""
        return [None if d is None else token_amount(d) for d in await self.accounts(pubkeys)]

    async def signature_statuses(
        self, signatures: Sequence[Signature]
    ) -> list[SignatureStatus | None]:
        out: list[SignatureStatus | None] = []
        for i in range(0, len(signatures), SIGNATURE_STATUSES_MAX):
            chunk = list(signatures[i : i + SIGNATURE_STATUSES_MAX])
            resp = await self._call(
                "getSignatureStatuses",
                functools.partial(
                    self._client.get_signature_statuses, chunk, search_transaction_history=True
                ),
            )
            for status in resp.value:
                if status is None:
                    out.append(None)
                    continue
                level = status.confirmation_status
                confirmed = level in (
                    TransactionConfirmationStatus.Confirmed,
                    TransactionConfirmationStatus.Finalized,
                ) or (level is None and status.confirmations is None)
                err = None if status.err is None else str(status.err)
                out.append(SignatureStatus(status.slot, err, confirmed))
        return out

    # -- writes ------------------------------------------------------------------------------

    async def send(self, raw: bytes) -> SendResult:
        """Send signed transaction bytes (with preflight) and classify the answer."""
        opts = TxOpts(skip_preflight=False, preflight_commitment=self.commitment, max_retries=0)
        try:
            await self._call(
                "sendTransaction", lambda: self._client.send_raw_transaction(raw, opts=opts)
            )
        except RPCException as exc:
            return _classify(exc)
        except RPCNoResultException as exc:
            raise ChainError(ChainErrorCode.RPC_ERROR, f"sendTransaction: {exc}") from exc
        return SendResult(SendKind.SENT)

    async def airdrop(self, pubkey: Pubkey, lamports: int) -> Signature:
        """Local runtime and test clusters only."""
        resp = await self._call(
            "requestAirdrop", lambda: self._client.request_airdrop(pubkey, lamports)
        )
        return resp.value


def _classify(exc: RPCException) -> SendResult:
    payload = exc.args[0] if exc.args else None
    err, logs = None, tuple[str, ...]()
    if isinstance(payload, SendTransactionPreflightFailureMessage):
        err = payload.data.err
        logs = tuple(payload.data.logs or ())
    text = str(err) if err is not None else str(getattr(payload, "message", payload))
    if "AlreadyProcessed" in text:
        return SendResult(SendKind.ALREADY_PROCESSED, text, logs)
    if "BlockhashNotFound" in text:
        return SendResult(SendKind.BLOCKHASH_EXPIRED, text, logs)
    if err is None:
        raise ChainError(ChainErrorCode.RPC_ERROR, f"sendTransaction refused: {text}")
    return SendResult(SendKind.FAILED, text, logs)

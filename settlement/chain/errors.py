"""Errors of the chain side, each with a stable code (like the engine's reject codes).

Callers branch on ``code``; the message is for people. ``ChainUnavailable`` is the one
transient error: the RPC endpoint did not answer within the retry budget, nothing was lost
and the same call can be made again later.
"""

from __future__ import annotations

from enum import Enum


class ChainErrorCode(Enum):
    RPC_UNAVAILABLE = "rpc_unavailable"
    RPC_ERROR = "rpc_error"
    WALLET_NOT_REGISTERED = "wallet_not_registered"
    WITHDRAWAL_REFUSED = "withdrawal_refused"
    UNKNOWN_VAULT = "unknown_vault"
    UNKNOWN_ASSET = "unknown_asset"
    NO_MINT = "no_mint"
    TRANSACTION_TOO_LARGE = "transaction_too_large"
    INVALID_AMOUNT = "invalid_amount"
    AUTHORITY_MISSING = "authority_missing"
    WORKER_RUNNING = "worker_running"


class ChainError(Exception):
    """A refused or impossible chain operation."""

    def __init__(self, code: ChainErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


class ChainUnavailable(ChainError):
    """The RPC endpoint failed or timed out for longer than the retry budget."""

    def __init__(self, message: str) -> None:
        super().__init__(ChainErrorCode.RPC_UNAVAILABLE, message)

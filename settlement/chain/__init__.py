"""Solana settlement: vaults, deposits, withdrawals, netted batches, reconciliation.

DESIGN "On-chain settlement": only programs every cluster has (System, SPL Token, ATA,
Memo), reached only over JSON-RPC with solana-py, so the embedded runtime and a real
cluster are used the same way. Module map:

- ``service.ChainSettlement``: the whole thing wired together (what the server runs)
- ``vaults``: token accounts per (account, asset), escrow and fee vaults
- ``deposits``: vault balance rises -> ``Deposit`` commands, exactly once
- ``withdrawals``: ``Withdraw`` reserve -> transfer to a registered wallet -> complete/release
- ``netting`` + ``batches``: fills -> netted transfers -> transactions with markers
- ``sender``: the signed-transaction lifecycle (resend, confirm, expire, re-sign)
- ``reconcile``: vault balances on chain against the Postgres ledger
- ``rpc``, ``programs``, ``txsize``, ``direct``, ``keys``, ``config``, ``context``: plumbing
"""

from settlement.chain.config import ChainConfig
from settlement.chain.errors import ChainError, ChainErrorCode, ChainUnavailable
from settlement.chain.service import ChainSettlement

__all__ = ["ChainConfig", "ChainError", "ChainErrorCode", "ChainSettlement", "ChainUnavailable"]

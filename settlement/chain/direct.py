"""One-off transactions that are idempotent by themselves, sent and awaited directly.

Creating a vault or a mint at a seed address either happens once or fails because the
account exists, so these need none of the bookkeeping of settlement transactions
(``sender``): sign, send, wait until landed; on an expired blockhash, sign again.
"""

from __future__ import annotations

import asyncio

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction

from settlement.chain.errors import ChainError, ChainErrorCode
from settlement.chain.rpc import ChainRpc, SendKind
from settlement.chain.txsize import MAX_TX_BYTES


def sign(authority: Keypair, ixs: list[Instruction], blockhash) -> Transaction:
    message = Message.new_with_blockhash(ixs, authority.pubkey(), blockhash)
    tx = Transaction([authority], message, blockhash)
    size = len(bytes(tx))
    if size > MAX_TX_BYTES:
        raise ChainError(
            ChainErrorCode.TRANSACTION_TOO_LARGE, f"{size} bytes, the limit is {MAX_TX_BYTES}"
        )
    return tx


async def send_and_wait(
    rpc: ChainRpc, authority: Keypair, ixs: list[Instruction], *, poll: float = 0.05
) -> str | None:
    """Land ``ixs`` in one transaction; returns None on success, else the program error.

    A program error (e.g. the account exists already) is returned, not raised: for an
    idempotent setup step the caller checks the state it wanted instead.
    """
    while True:
        blockhash, last_valid = await rpc.latest_blockhash()
        tx = sign(authority, ixs, blockhash)
        result = await rpc.send(bytes(tx))
        if result.kind is SendKind.FAILED:
            return result.error
        if result.kind is SendKind.BLOCKHASH_EXPIRED:
            continue
        signature = tx.signatures[0]
        while True:
            (status,) = await rpc.signature_statuses([signature])
            if status is not None and status.confirmed:
                return status.err
            if await rpc.block_height() > last_valid:
                break  # expired before landing: sign again
            await asyncio.sleep(poll)

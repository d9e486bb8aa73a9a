"""Local-runtime conveniences: money from nowhere, for demos, tests and benchmarks.

On the embedded runtime the exchange's authority is also the mint authority of the mints
it created, so it can put tokens anywhere: into a user's wallet (as if bought elsewhere) or
straight into a vault (as a deposit arrives). On a real cluster these refuse to run.
"""

from __future__ import annotations

from solders.pubkey import Pubkey

from settlement.chain import programs
from settlement.chain.context import ChainContext
from settlement.chain.direct import send_and_wait
from settlement.chain.errors import ChainError, ChainErrorCode


async def mint_to(ctx: ChainContext, asset: int, destination: Pubkey, amount: int) -> None:
    """Mint ``amount`` base units of ``asset`` into the token account ``destination``."""
    if not ctx.local:
        raise ChainError(ChainErrorCode.NO_MINT, "minting is for the local runtime only")
    mint = ctx.mint(asset)
    ix = programs.mint_to(ctx.authority_key, mint.address, destination, amount, mint.decimals)
    error = await send_and_wait(ctx.rpc, ctx.authority, [ix])
    if error is not None:
        raise ChainError(ChainErrorCode.RPC_ERROR, f"mint of {amount} failed: {error}")

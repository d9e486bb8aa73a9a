"""The embedded local Solana runtime: a JSON-RPC node over LiteSVM, state kept on disk.

``LocalSolana(state_dir).start()`` returns an ``http://`` URL that solana-py's ``Client``
and ``AsyncClient`` use exactly as a real cluster's. SPL Token, Token-2022, Associated
Token Account, Memo and the System program are present. One local-only method,
``cx_setAccount``, writes an account directly (for the simulated Pyth publisher);
``cx_advanceBlocks`` is the remote form of the ``advance_blocks`` test hook.
``LocalSolanaProcess`` runs the same node in a child process (LiteSVM holds the GIL while
it executes, so a busy in-process node would stall the caller's threads).
"""

from .node import LocalSolana
from .process import LocalSolanaProcess

__all__ = ["LocalSolana", "LocalSolanaProcess"]

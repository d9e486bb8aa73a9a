"""Settlement: the Postgres ledger projection of the engine's journal, and (beside it) the
Solana settlement. The journal is the truth; everything here is rebuilt from it."""

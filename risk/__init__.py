"""Pre-trade checks and post-trade bookkeeping: balances, reservations, inventory, limits.

``risk.kernel`` holds the compiled rules run inside the engine's batch kernel, on the
arrays of ``risk.state``; ``risk.reference`` is the plain-Python model they are tested
against.
"""

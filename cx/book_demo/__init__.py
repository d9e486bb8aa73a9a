"""``cx demo``: simulated order flow through the bare order book, drawn in the terminal."""

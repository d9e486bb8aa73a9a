"""Feeds: what flows into the engine from outside (oracle prices) and what flows out of it
to the world (market data). Each subpackage is one feed with one job."""

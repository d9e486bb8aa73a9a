"""Prometheus counters of what the oracle path did with each quote.

One ``OracleMetrics`` per registry: the process-wide one by default (what ``/metrics``
exports), a private ``CollectorRegistry`` in tests so counts start at zero.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter


class OracleMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.accepted = Counter(
            "cx_oracle_quotes_accepted",
            "Oracle quotes that passed the guards and were submitted as SetOraclePrice",
            ["asset", "source"],
            registry=registry,
        )
        self.refused = Counter(
            "cx_oracle_quotes_refused",
            "Oracle quotes refused by a guard, by reason; never submitted",
            ["asset", "source", "reason"],
            registry=registry,
        )
        self.unchanged = Counter(
            "cx_oracle_quotes_unchanged",
            "Oracle quotes skipped because their publish time was already submitted",
            ["asset", "source"],
            registry=registry,
        )
        self.engine_rejected = Counter(
            "cx_oracle_quotes_engine_rejected",
            "SetOraclePrice commands the engine refused, by reject code name",
            ["asset", "reason"],
            registry=registry,
        )
        self.read_errors = Counter(
            "cx_oracle_read_errors",
            "Failures reading a source: undecodable accounts, bad messages, lost connections",
            ["source", "reason"],
            registry=registry,
        )

    def count(self, counter: str, **labels: str) -> float:
        """The current value of one labelled counter (tests, status pages)."""
        value = self.registry.get_sample_value(f"cx_oracle_{counter}_total", labels)
        return value or 0.0


@cache
def default_metrics() -> OracleMetrics:
    """The counters in the process-wide registry, created once."""
    return OracleMetrics()

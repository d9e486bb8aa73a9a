"""The market data benchmark at a tiny size: it runs, and reports what it promises.

No timing is asserted: only that every key is there, that the runs published what the
engine produced, and that the subscriber received every paced update.
"""

from __future__ import annotations

import pytest

from benchmarks import marketdata as bench


@pytest.fixture
def redis_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CX_REDIS_URL", redis_url)  # the same server the other tests use
    return redis_url


def test_benchmark_reports_its_keys(redis_env: str) -> None:
    result = bench.run(bench.TINY, quick=True, progress=lambda _msg: None)
    for key in (
        "updates_per_s",
        "publish_lag_p50_ms",
        "publish_lag_p99_ms",
        "unbatched_updates_per_s",
        "batched_vs_unbatched",
        "build_only_updates_per_s",
    ):
        assert result[key] > 0, key
    assert result["updates"] > bench.TINY.commands // 2
    assert result["lag_updates"] > 0 and result["lag_updates_missing"] == 0
    assert result["publish_lag_p50_ms"] <= result["publish_lag_p99_ms"]
    assert set(result["targets"]) == {"updates_per_s", "publish_lag_p99_ms"}

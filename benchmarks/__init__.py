"""Measurements of CX's hot paths, each compared against a baseline in the same run.

The machines these run on are shared and noisy, so every benchmark reports a ratio to a
baseline measured alongside it. ``harness`` gives them one command line (``--json``,
``--quick``), one report frame (machine, targets, peak RSS, load averages) and one way
of printing tables; ``probes`` runs what needs a fresh interpreter; ``latency`` is the
open-loop driver ``matching`` measures latency with; ``workloads`` and
``engine_workload`` generate the command rows.
"""

"""Measurements of CX's hot paths, each compared against a baseline in the same run.

The machines these run on are shared and noisy, so every benchmark reports a ratio to a
baseline measured alongside it, and prints JSON with ``--json`` for tools to compare.
"""

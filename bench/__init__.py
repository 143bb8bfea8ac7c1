"""Benchmark suite for layercfg: HTTP overhead against baselines, and fleet scale."""

"""Baseline servers the suite compares layercfg against."""

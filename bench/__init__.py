"""Benchmarks: `make bench` / `make bench-quick`. Figures are ratios against baselines
measured in the same run, never wall-clock limits in tests."""

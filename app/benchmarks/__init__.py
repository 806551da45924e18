"""Benchmark runs: the window, the run form and queue, results, charts and the sample browser."""

"""The throughput, latency and memory benchmark (`python -m bench`); see docs/benchmarks.md."""

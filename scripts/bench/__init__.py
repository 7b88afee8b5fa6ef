"""The benchmarks behind ``python scripts/bench.py WHAT``, one module each."""

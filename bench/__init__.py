"""Quipu benchmarks: ``python -m bench [--quick]`` prints one markdown table."""

"""The benchmark suite (`make bench`, `make bench-smoke`): every figure against a baseline
measured in the same run, printed as a table and written as JSON. See docs/performance.md.
"""

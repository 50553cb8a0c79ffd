"""Benchmarks of egpu_array against NumPy (and numexpr/torch when installed): ``python -m benchmarks``."""

"""Benchmarks of sklearn_deepclust: ``python -m benchmarks quality|engine|scale``."""

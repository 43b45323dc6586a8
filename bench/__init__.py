"""Benchmarks (``make bench``, see ``bench/README.md``): one table of figures, each with a
baseline measured in the same run, its target and a verdict."""

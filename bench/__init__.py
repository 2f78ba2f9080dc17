"""The benchmark suite: ``python -m bench`` (``make bench``).

Measures one sync against the goals of the performance issue, as ratios to what
PostgreSQL itself manages with the same rows (the *raw bound*, see
:mod:`bench.raw_bound`), all in one run. See :mod:`bench.__main__` for the cases.
"""

"""dhtviewer's benchmark suite: ``python -m benchmarks [NAME ...] [--size tiny|medium|full]``.

Each module measures one thing and returns tables and raw figures (see ``common.py``); the runner
(``run.py``) prints the tables and writes ``bench-results/<name>.json``. Benchmarks never assert
timings. ``make bench`` runs them all at full size; ``make test`` runs each once at tiny size
(tests/test_benchmarks_smoke.py) so that none of them rots.
"""

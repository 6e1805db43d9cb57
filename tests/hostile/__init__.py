"""Hostile-network tests: fuzzing properties, protections, floods and persistence faults.

A package (unlike the other test folders) so that ``fuzz/`` can reuse its helpers:
``tests.hostile.samples`` (valid datagrams of every KRPC method) and
``tests.hostile.invariants`` (``check_invariants``).
"""

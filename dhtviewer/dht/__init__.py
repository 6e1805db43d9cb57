"""The sans-IO protocol core.

Nothing in this package opens a socket, reads a clock, sleeps, imports asyncio or Qt, or uses the
global random generator: time (``now``, seconds as a float) and a ``random.Random`` are always
passed in. That is what lets the same code run in unit tests, in the simulated network and on
the real one.
"""

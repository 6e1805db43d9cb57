"""Coverage-guided fuzzing of the receive path with atheris (libFuzzer).

    make fuzz FUZZ_SECONDS=600            # installs atheris, seeds the corpus, runs

or by hand, from the repository root::

    python fuzz/seed_corpus.py
    python fuzz/fuzz_receive.py fuzz/corpus -artifact_prefix=fuzz/crashes/ -max_total_time=600

What is checked is in ``fuzz/harness.py``. A crashing input lands in ``fuzz/crashes/``; every
file there is replayed by ``tests/hostile/test_fuzz_properties.py``, so it becomes a regression
test as soon as it is committed. Only the project's own modules are instrumented.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    import atheris

    with atheris.instrument_imports(include=["dhtviewer"]):
        from fuzz.harness import one_input

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

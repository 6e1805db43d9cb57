"""Write the seed corpus for ``fuzz_receive.py``: valid datagrams of every KRPC method (queries,
replies matching the primed node's transactions, errors, the libtorrent captures), each as a
bare datagram and as a record, plus a few multi-record sequences (get_peers then announce_peer,
a reply from the wrong port then the right one).

    python fuzz/seed_corpus.py [CORPUS_DIR]      # default: fuzz/corpus

File names are content hashes, as libFuzzer names what it adds, so re-running is idempotent.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.harness import MARK  # noqa: E402
from tests.hostile.samples import SOURCES, valid_messages  # noqa: E402


def record(source: int, datagram: bytes) -> bytes:
    return bytes([MARK, source]) + len(datagram).to_bytes(2, "little") + datagram


def seeds() -> list[bytes]:
    msgs = valid_messages()
    out: list[bytes] = []
    for name, data in msgs.items():
        out.append(data)
        # Queries come from the querier, replies from where the node's queries went.
        src = 2 if name.startswith("q_") else (1 if name in ("r_nodes", "r_values") else 0)
        out.append(record(src, data))
    out.append(record(2, msgs["q_get_peers"]) + record(2, msgs["q_announce"]))
    out.append(record(4, msgs["r_ping"]) + record(0, msgs["r_ping"]))
    out.append(b"".join(record(1, msgs[n]) for n in ("r_nodes", "r_values", "e_202")))
    out.append(b"".join(record(i % len(SOURCES), msgs["q_ping"]) for i in range(8)))
    return out


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "corpus"
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for data in seeds():
        path = target / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            written += 1
    print(f"{written} new seed(s) in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

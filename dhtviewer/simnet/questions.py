"""Questions: what the control API asks every process that holds a part of the network.

A network served by one process has one part; served by workers (``workers.py``), it has one
per serving process and one in the coordinator. Each answers for itself (``answer``); the
control API adds the answers up. The questions are about what only that process knows: its
counters (BEP 44 items and BEP 33 scrapes served among them), its I/O, the lateness of its
replies, its memory, and the peers announced to its nodes.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhtviewer.simnet.network import Simnet
    from dhtviewer.simnet.server import Sender

__all__ = ["Question", "answer", "memory_mb"]


class Question(Enum):
    STATS = "stats"
    """Counters, I/O counters, rates, the lateness histogram, memory, announced peers."""
    SWARM = "swarm"
    """args: (info_hash,): the peers announced to this part's nodes, those nodes, and the
    addresses of the seeds and downloaders among them (BEP 33)."""


def memory_mb(pid: int | None = None) -> dict[str, float]:
    """The resident set size, its peak so far and the proportional set size (shared pages
    divided among the processes that share them) of this process or ``pid``, in MiB (Linux; 0
    where unknown)."""
    out = {"rss_mb": 0.0, "peak_rss_mb": 0.0, "pss_mb": 0.0}
    proc = f"/proc/{pid}" if pid is not None else "/proc/self"
    for path, key, field in ((f"{proc}/status", "rss_mb", "VmRSS:"),
                             (f"{proc}/status", "peak_rss_mb", "VmHWM:"),
                             (f"{proc}/smaps_rollup", "pss_mb", "Pss:")):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(field):
                        out[key] = int(line.split()[1]) / 1024.0
                        break
        except OSError:
            pass
    return out


def answer(net: Simnet, part: Sender | None, question: Question, args: tuple[Any, ...],
           now: float) -> Any:
    """This process's answer (JSON-able). ``part``: its I/O (None: no sockets, in tests)."""
    if question is Question.STATS:
        doc: dict[str, Any] = {
            "role": net.role.value,
            "pid": os.getpid(),
            "counters": net.counters.to_json(),
            "announced_peers": net.swarms.announced.peer_count(),
            "items": dict(net.items.stats),
            "scrapes": net.scrape.scrapes,
            **memory_mb(),
        }
        if part is not None:
            doc.update({"server": part.stats.to_json(), "lateness": part.lateness.to_json(),
                        "rates": dict(part.rates), "pending_replies": part.pending_replies()})
        return doc
    if question is Question.SWARM:
        (info_hash,) = args
        peers, holders = net.swarms.announced_peers(info_hash, now)
        seeds, downloaders = net.scrape.announced_ips(info_hash, now)
        return {"peers": [f"{h}:{p}" for h, p in peers], "holders": holders,
                "seed_ips": sorted(seeds), "downloader_ips": sorted(downloaders)}
    raise ValueError(f"unknown question {question!r}")

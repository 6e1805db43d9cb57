"""The desktop application under measurement: start time, memory over a long run, and how fluid
it stays while its node is flooded.

Each measurement launches the real application (``python -m benchmarks.gui_driver``, which
calls ``dhtviewer.cli.main``) as a separate process, offscreen (``QT_QPA_PLATFORM=offscreen``)
and with its settings and state in a throw-away folder (``XDG_*`` variables), so the user's
own settings are neither read nor changed. Every datagram stays on loopback: a local testnet,
or a loopback bootstrap address.

1. Start: from launching the process to the first paint of the main window; the first launch
   warms the disk caches, the next ones are the "warm" figure.
2. Soak: ``--testnet 64``; once the node is ready, 100 get_peers lookups (full size) spread
   over 10 minutes; RSS sampled along, event-loop lag and UI update time (the controller's
   100 ms tick, with every widget slot it triggers) recorded throughout.
3. Flood (same launch, after the soak): the application's node gets a full routing table and
   peer store, its rate limits are switched off (raw capacity, as in the headless ``serving``
   run), and this process floods it from many loopback IPs, paced at 3,200 queries/s, then
   pipelined; answered/s and reply latency as in ``serving``, event-loop lag and UI update
   time from inside the app.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from benchmarks.common import BenchResult, Table, check_size, ms, summary
from benchmarks.serving import FloodClient

NAME = "gui"
TITLE = "Desktop application: start time, RSS after a long run, fluidity under a flood"

ROOT = Path(__file__).resolve().parent.parent
FLOOD_RATE = 3200.0  # a little above the 3,000/s target, so that meeting it shows


@dataclass(frozen=True)
class _Params:
    start_runs: int  # warm launches after the first; -1: take the start from the soak launch
    soak_nodes: int
    soak_seconds: float
    soak_lookups: int
    flood_seconds: float
    flood_sockets: int
    flood_rate: float
    flood_window: int


_PARAMS = {
    "tiny": _Params(-1, 16, 2.0, 3, 1.0, 16, 300.0, 16),
    "medium": _Params(2, 64, 60.0, 20, 5.0, 200, FLOOD_RATE, 64),
    "full": _Params(3, 64, 600.0, 100, 10.0, 500, FLOOD_RATE, 64),
}


class App:
    """The application in a child process; ``result(kind)`` waits for its RESULT line."""

    def __init__(self, mode: str, params: dict[str, Any], home: Path) -> None:
        env = dict(os.environ)
        env["QT_QPA_PLATFORM"] = "offscreen"
        # Settings and node state go to a scratch folder; caches (fonts) stay the user's own.
        for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
            env[var] = str(home / var.lower())
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.launched = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.gui_driver", mode, json.dumps(params)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream: TextIO | None, results: bool) -> None:
        assert stream is not None
        for line in stream:
            if results and line.startswith("RESULT "):
                self._lines.put(line[7:])
            elif not results:
                self._stderr.append(line)
                del self._stderr[:-40]
        if results:
            self._lines.put(None)

    def result(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"the application did not report {kind!r}") from None
            if line is None:
                raise RuntimeError(f"the application exited before reporting {kind!r}:\n"
                                   + "".join(self._stderr[-15:]))
            doc: dict[str, Any] = json.loads(line)
            if doc["kind"] == "error":
                raise RuntimeError(f"the application failed: {doc['error']}")
            if doc["kind"] == kind:
                return doc

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = 30.0) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _start_time(home: Path) -> dict[str, float]:
    app = App("start", {"args": ["--bootstrap", "127.0.0.1:9", "--bind", "127.0.73.1:0"],
                        "limit": 120}, home)
    try:
        shown = app.result("shown", 120)
    finally:
        app.close()
    return _start_figures(shown, app.launched)


def _start_figures(shown: dict[str, Any], launched: float) -> dict[str, float]:
    return {
        "interpreter_and_imports": shown["t_main"] - launched,
        "show_called": shown["t_show"] - launched,
        "first_paint": (shown["t_paint"] or shown["t_show"]) - launched,
        "rss_mb": shown["rss_mb"],
    }


def _soak_and_flood(home: Path, p: _Params) -> tuple[dict[str, Any], dict[str, Any]]:
    params = {"args": ["--testnet", str(p.soak_nodes), "--bind", "127.0.75.1:0"],
              "seconds": p.soak_seconds, "lookups": p.soak_lookups, "flood": True,
              "limit": p.soak_seconds + 600}
    app = App("run", params, home)
    flood: dict[str, Any] = {}
    try:
        shown = app.result("shown", 120)
        soak = app.result("soak", p.soak_seconds + 200)
        soak["rss_at_show_mb"] = shown["rss_mb"]
        soak["start"] = _start_figures(shown, app.launched)
        ready = app.result("flood_ready", 120)
        addr = (str(ready["addr"][0]), int(ready["addr"][1]))
        hashes = [bytes.fromhex(h) for h in ready["info_hashes"]]
        with FloodClient(addr, p.flood_sockets, hashes, seed=8) as client:
            client.run(0.5, window=16)  # warm-up
            for label, kw in (("paced", {"rate": p.flood_rate}),
                              ("pipelined", {"window": p.flood_window})):
                app.send("start")
                r = client.run(p.flood_seconds, **kw)
                app.send("stop")
                inside = app.result("flood", 60)
                r["latency"] = summary(r.pop("latencies"))
                r["answered_per_s"] = r["answered"] / r["seconds"]
                flood[label] = {**r, **inside, "offered_rate": kw.get("rate"),
                                "window": kw.get("window")}
        app.send("quit")
    finally:
        app.close()
    return soak, flood


def run(size: str = "full") -> BenchResult:
    check_size(size)
    p = _PARAMS[size]
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dhtviewer-bench-gui-") as tmp:
        home = Path(tmp)
        warm: list[dict[str, float]] = []
        if p.start_runs >= 0:
            first = _start_time(home)
            warm = [_start_time(home) for _ in range(p.start_runs)]
        soak, flood = _soak_and_flood(home, p)
        if p.start_runs < 0:
            first = soak["start"]
        data["start"] = {"first": first, "warm": warm}
        data["soak"] = soak
        data["flood"] = flood

    start = Table("Start: process launch to the main window's first paint (offscreen)",
                  ["launch", "first paint ms", "of which interpreter + imports ms",
                   "show() called ms", "RSS at show MB"])
    for label, r in [("first (warms caches)", first)] + [(f"warm {i + 1}", w)
                                                          for i, w in enumerate(warm)]:
        start.add(label, ms(r["first_paint"]), ms(r["interpreter_and_imports"]),
                  ms(r["show_called"]), r["rss_mb"])
    best = summary([w["first_paint"] for w in warm] or [first["first_paint"]])
    start.notes.append(f"target: window shown < 1,500 ms after launch (warm); median "
                       f"{ms(best['median']):.0f} ms")

    lag, tick = soak["lag"], soak["tick"]
    soak_t = Table(
        f"Soak: --testnet {p.soak_nodes}, {soak['lookups_started']} lookups over "
        f"{soak['seconds']:.0f} s",
        ["measure", "value"],
    )
    soak_t.add("RSS after the window showed, MB", soak["rss_at_show_mb"])
    soak_t.add("RSS at the end, MB", soak["rss_end_mb"])
    soak_t.add("RSS peak (sampled), MB", soak["rss_peak_mb"])
    soak_t.add("event-loop lag p50 / p99 / max, ms",
               f"{ms(lag['median']):.1f} / {ms(lag['p99']):.1f} / {ms(lag['max']):.1f}")
    soak_t.add("UI update (tick) p50 / p99 / max, ms",
               f"{ms(tick['median']):.2f} / {ms(tick['p99']):.2f} / {ms(tick['max']):.1f}")
    soak_t.add("application CPU, %", soak["cpu_percent"])
    soak_t.notes.append(f"target: GUI RSS < 200 MB after the 10-minute run; "
                        f"{soak['rss_end_mb']:.0f} MB after {soak['seconds']:.0f} s")

    fl = Table(
        f"Flood of the application's node ({p.flood_sockets} source IPs, rate limits off, "
        f"{p.flood_seconds:g} s each)",
        ["load", "answered/s", "reply p50 ms", "reply p99 ms", "loop lag p50 ms",
         "loop lag p99 ms", "loop lag max ms", "UI tick p99 ms", "app CPU %"],
    )
    for r in flood.values():
        load = (f"paced {r['offered_rate']:,.0f} q/s" if r["offered_rate"]
                else f"pipelined, {r['window']} in flight")
        fl.add(load, r["answered_per_s"], ms(r["latency"]["median"]), ms(r["latency"]["p99"]),
               ms(r["lag"]["median"]), ms(r["lag"]["p99"]), ms(r["lag"]["max"]),
               ms(r["tick"]["p99"]), r["cpu_percent"])
    fl.notes.append("target: >= 3,000 answered/s with the GUI open while event-loop lag p99 "
                    "< 50 ms")
    return BenchResult(NAME, size, [start, soak_t, fl], data)

"""The benchmark runner: ``python -m benchmarks [NAME ...] [--size S] [--out DIR] [--markdown F]``.

Runs the named benchmarks (all by default) in the order below, prints one block of tables per
benchmark and writes ``<out>/<name>.json``. A benchmark that fails is reported and the others
still run; the exit status is then 1. ``--markdown`` also writes every table as Markdown (the
README's "Performance" section is made from it).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from benchmarks.common import (
    DEFAULT_OUT,
    SIZES,
    BenchResult,
    cpu_ticks,
    describe_machine,
    load_average,
    steal_percent,
    write_json,
)

BENCHMARKS: dict[str, str] = {
    "codec": "benchmarks.codec",
    "serving": "benchmarks.serving",
    "sim_lookups": "benchmarks.sim_lookups",
    "sim_lookups_100k": "benchmarks.sim_lookups_big",
    "sim_bootstrap": "benchmarks.sim_bootstrap",
    "libtorrent": "benchmarks.side_by_side",
    "resources": "benchmarks.resources",
    "gui": "benchmarks.gui",
    "simnet": "benchmarks.simnet",
    "dht_extensions": "benchmarks.dht_extensions",
}
"""Benchmark name -> module (imported only when it runs)."""


def load(name: str) -> ModuleType:
    return importlib.import_module(BENCHMARKS[name])


def run_one(name: str, size: str, out: Path | None) -> BenchResult:
    """Run one benchmark; its JSON is written to ``out`` (unless None)."""
    module = load(name)
    load_before = load_average()
    ticks_before = cpu_ticks()
    started = time.perf_counter()
    result: BenchResult = module.run(size)
    result.wall_seconds = time.perf_counter() - started
    load_after = load_average()
    if load_before is not None and load_after is not None:
        result.load_average = (load_before, load_after)
    result.steal_percent = steal_percent(ticks_before, cpu_ticks())
    if out is not None:
        write_json(result, out)
    return result


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="dhtviewer benchmarks: print tables, write JSON results.",
    )
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    p.add_argument("--size", choices=SIZES, default="full",
                   help="tiny: seconds (smoke test); full: the reported figures (default)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for the JSON results (default: {DEFAULT_OUT})")
    p.add_argument("--markdown", type=Path, default=None, metavar="FILE",
                   help="also write every table as Markdown to FILE")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(f"{name:14} {load(name).TITLE}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    names = args.names or list(BENCHMARKS)
    print(f"machine: {describe_machine()}")
    print(f"size: {args.size}; results in {args.out}/\n", flush=True)
    failed: list[str] = []
    md: list[str] = []
    for name in names:
        title = load(name).TITLE
        banner = f"== {name}: {title} "
        print(banner + "=" * max(0, 100 - len(banner)), flush=True)
        try:
            result = run_one(name, args.size, args.out)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            print(flush=True)
            continue
        print(result.render())
        busy = ""
        if result.load_average is not None:
            busy = (f"; load average {result.load_average[0]:.1f} before, "
                    f"{result.load_average[1]:.1f} after, on {os.cpu_count()} cores")
        if result.steal_percent is not None:
            busy += f"; CPU steal {result.steal_percent:.0f}%"
        print(f"({name}: {result.wall_seconds:.1f} s wall{busy})\n", flush=True)
        md.append(f"### {name}: {title}\n\n{result.render(markdown=True)}\n"
                  f"_{result.wall_seconds:.0f} s wall{busy}_\n")
    if args.markdown is not None:
        header = f"Machine: {describe_machine()}. Size: {args.size}.\n\n"
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(header + "\n".join(md))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

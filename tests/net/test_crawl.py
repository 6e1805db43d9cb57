"""CrawlRecorder: per-minute figures, distinct counts, what goes to the store and when."""

from __future__ import annotations

from dhtviewer.dht import events as ev
from dhtviewer.net.crawl import CrawlRecorder
from dhtviewer.net.sample_store import SampleStore

A, B = ("10.0.0.1", 1), ("10.0.0.2", 1)


def reply(node: bytes, addr: tuple[str, int], samples: tuple[bytes, ...],
          error: str | None = None) -> ev.SamplesReceived:
    return ev.SamplesReceived(7, node, addr, samples, None if error else 50,
                              None if error else 60, error, 0.0)


def test_figures_and_store() -> None:
    clock = [1000.0]
    store = SampleStore(":memory:")
    r = CrawlRecorder(7, store, 20.0, clock=lambda: clock[0])
    h1, h2, h3 = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20
    assert r.record(reply(b"\xaa" * 20, A, (h1, h2))) == 2
    clock[0] = 1030.0
    assert r.record(reply(b"\xbb" * 20, B, (h2, h3))) == 1
    clock[0] = 1075.0
    r.record(reply(b"\xcc" * 20, ("10.0.0.3", 1), (), "error 204: method unknown"))
    r.record(reply(b"\xdd" * 20, ("10.0.0.4", 1), (), "timeout"))
    clock[0] = 1090.0
    r.finish()
    f = r.figures()
    assert (f.replies, f.samples, f.distinct, f.supporting, f.without, f.failed) == (
        2, 4, 3, 2, 1, 1
    )
    assert f.elapsed == 90.0 and f.samples_per_minute == 4 / 1.5
    assert f.per_minute == ((960.0, 2, 2), (1020.0, 2, 1))
    assert store.totals().info_hashes == 3 and store.totals().nodes_without == 1
    store.close()

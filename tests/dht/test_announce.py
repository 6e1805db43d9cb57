"""AnnounceRound: announce_peer to the token holders, one AnnounceFinished however it ends."""

from __future__ import annotations

from typing import Any

from dhtviewer.dht import events as ev
from dhtviewer.dht.announce import AnnounceRound
from dhtviewer.dht.lookup import Candidate
from dhtviewer.dht.messages import AnnouncePeerQuery, Response
from dhtviewer.dht.transactions import Pending, TransactionOwner

IH = b"\x05" * 20


class FakeSend:
    def __init__(self, refuse: int = 0) -> None:
        self.sent: list[tuple[object, ...]] = []
        self.refuse = refuse

    def __call__(self, qtype: type, addr: Any, node_id: Any, now: float,
                 owner: TransactionOwner, **args: Any) -> Pending | None:
        if len(self.sent) < self.refuse:
            self.sent.append(("refused", addr))
            return None
        self.sent.append((qtype, addr, args["token"], args["port"], args["implied_port"]))
        return Pending(b"t", addr, node_id, b"announce_peer", now, now + 1, now + 5, owner)


def holders(n: int) -> list[Candidate]:
    return [Candidate(bytes([i]) * 20, (f"127.0.5.{i}", 6881), i, None, 1, token=b"tok%d" % i)
            for i in range(1, n + 1)]


def make() -> tuple[AnnounceRound, list[ev.Event], list[AnnounceRound]]:
    events: list[ev.Event] = []
    done: list[AnnounceRound] = []
    r = AnnounceRound(7, IH, 6000, False, emit=events.append, on_done=done.append)
    return r, events, done


def pending(r: AnnounceRound, addr: tuple[str, int]) -> Pending:
    return Pending(b"t", addr, None, b"announce_peer", 0.0, 1.0, 5.0, r)


def test_each_holder_gets_its_own_token_and_the_round_ends_once() -> None:
    r, events, done = make()
    send = FakeSend()
    hs = holders(3)
    r.start(hs, send, 1.0)
    assert send.sent == [(AnnouncePeerQuery, h.addr, h.token, 6000, False) for h in hs]
    r.on_response(pending(r, hs[0].addr), Response(b"t", b"\x01" * 20), 1.1)
    r.on_error(pending(r, hs[1].addr), "error 203: bad token", 1.2)
    r.on_response(pending(r, hs[0].addr), Response(b"t", b"\x01" * 20), 1.25)  # duplicate
    assert events == [] and r.active
    r.on_timeout(pending(r, hs[2].addr), 6.0)
    failed = (hs[1].addr, hs[2].addr)
    assert events == [ev.AnnounceFinished(7, IH, 6000, (hs[0].addr,), failed, 6.0)]
    assert done == [r] and not r.active
    r.finish(7.0, cancelled=True)
    assert len(events) == 1


def test_no_holder_or_nothing_sendable_finishes_at_once() -> None:
    r, events, _ = make()
    r.start([], FakeSend(), 1.0)
    assert isinstance(events[0], ev.AnnounceFinished) and events[0].stored_at == ()
    r2, events2, _ = make()
    r2.start(holders(2), FakeSend(refuse=2), 1.0)
    assert events2[0].failed == tuple(h.addr for h in holders(2))  # type: ignore[union-attr]


def test_cancel_reports_what_was_stored_so_far() -> None:
    r, events, _ = make()
    hs = holders(2)
    r.start(hs, FakeSend(), 1.0)
    r.on_response(pending(r, hs[1].addr), Response(b"t", b"\x02" * 20), 1.1)
    r.finish(1.5, cancelled=True)
    assert events == [
        ev.AnnounceFinished(7, IH, 6000, (hs[1].addr,), (hs[0].addr,), 1.5, cancelled=True)
    ]

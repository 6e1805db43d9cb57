"""QueryError read from the core's error reasons, and FutureOwner: each outcome of a query
(answer, KRPC error, bad reply, timeout) resolves its future once, and nothing after that or
after it was abandoned raises inside the node."""

from __future__ import annotations

import asyncio

import pytest

from dhtviewer.dht.messages import Response
from dhtviewer.dht.transactions import Pending
from dhtviewer.net.queries import FutureOwner, QueryError

ADDR = ("127.0.0.1", 6881)


def pending(owner: FutureOwner) -> Pending:
    return Pending(b"tt", ADDR, None, b"echo", 10.0, 12.0, 20.0, owner)


def test_query_errors_from_the_core_reasons() -> None:
    err = QueryError.from_reason("error 204: method unknown", ADDR)
    assert (err.code, err.message, err.addr) == (204, "method unknown", ADDR)
    assert str(err) == "KRPC error 204 from 127.0.0.1:6881: method unknown"
    multi = QueryError.from_reason("error 201: two\nlines")
    assert (multi.code, multi.message) == (201, "two\nlines")
    bad = QueryError.from_reason("malformed reply: truncated", ADDR)
    assert bad.code is None and bad.message == "malformed reply: truncated"
    assert str(bad).startswith("bad reply from 127.0.0.1:6881")


def test_future_owner_outcomes() -> None:
    async def go() -> None:
        loop = asyncio.get_running_loop()
        answer = Response(b"tt", b"r" * 20, extra={b"echo": b"hi"})
        owner = FutureOwner(loop)
        owner.on_slow(pending(owner), 12.0)  # slow is not an outcome
        assert owner.active
        owner.on_response(pending(owner), answer, 13.0)
        owner.on_timeout(pending(owner), 20.0)  # too late: ignored, never raises
        assert not owner.active and await owner.future is answer

        owner = FutureOwner(loop)
        owner.on_error(pending(owner), "error 203: bad args", 11.0)
        with pytest.raises(QueryError) as err:
            await owner.future
        assert err.value.code == 203

        owner = FutureOwner(loop)
        owner.on_timeout(pending(owner), 20.0)
        with pytest.raises(TimeoutError, match=r"no answer to echo from 127\.0\.0\.1:6881"):
            await owner.future

        owner = FutureOwner(loop)
        owner.abandon()
        owner.on_response(pending(owner), answer, 13.0)
        assert owner.future.cancelled() and not owner.active

    asyncio.run(go())

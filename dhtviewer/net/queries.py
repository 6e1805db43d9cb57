"""Custom KRPC queries awaited from asyncio: ``QueryError`` and ``FutureOwner``, the transaction
owner that resolves a future with the answer.

The core sends a query of any method (``DhtNode.send_query``) and tells its ``TransactionOwner``
what became of it, with its own transaction matching (exact address, random transaction id)
and deadlines. ``FutureOwner`` turns that into an ``asyncio.Future``: the ``Response``, a
``QueryError`` for a KRPC error reply (or a reply that did not decode), ``TimeoutError`` at the
hard timeout. ``DhtSession.query`` is built on it.
"""

from __future__ import annotations

import asyncio
import re

from dhtviewer.dht.addresses import format_addr
from dhtviewer.dht.messages import Addr, Response
from dhtviewer.dht.transactions import Pending, TransactionOwner

__all__ = ["FutureOwner", "QueryError"]

# The core reports a KRPC error reply to owners as "error CODE: MESSAGE".
_ERROR_REASON = re.compile(r"error (-?\d+): (.*)", re.DOTALL)


class QueryError(Exception):
    """The queried node answered with a KRPC error (``code``: 201 generic, 202 server, 203
    protocol, 204 method unknown; ``message`` its text), or with a reply that did not decode
    (``code`` None, ``message`` says what was wrong). A custom method's handler raises it to
    answer with that error."""

    def __init__(self, code: int | None, message: str, addr: Addr | None = None) -> None:
        self.code = code
        self.message = message
        self.addr = addr
        where = f" from {format_addr(addr)}" if addr is not None else ""
        what = f"KRPC error {code}" if code is not None else "bad reply"
        super().__init__(f"{what}{where}: {message}")

    @classmethod
    def from_reason(cls, reason: str, addr: Addr | None = None) -> QueryError:
        """From the ``reason`` the core gives ``TransactionOwner.on_error``."""
        m = _ERROR_REASON.fullmatch(reason)
        if m is not None:
            return cls(int(m.group(1)), m.group(2), addr)
        return cls(None, reason, addr)


class FutureOwner(TransactionOwner):
    """Owns one query; ``future`` resolves with its outcome. Its callbacks never raise (they
    run inside the node). After ``abandon()`` (the awaiting task was cancelled) it ignores
    whatever comes."""

    __slots__ = ("future",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future[Response] = loop.create_future()

    @property
    def active(self) -> bool:
        return not self.future.done()

    def abandon(self) -> None:
        if not self.future.done():
            self.future.cancel()

    def on_response(self, p: Pending, r: Response, now: float) -> None:
        if not self.future.done():
            self.future.set_result(r)

    def on_error(self, p: Pending, reason: str, now: float) -> None:
        self._fail(QueryError.from_reason(reason, p.addr))

    def on_timeout(self, p: Pending, now: float) -> None:
        waited = now - p.sent_at
        self._fail(TimeoutError(
            f"no answer to {p.method.decode(errors='replace')} from {format_addr(p.addr)} "
            f"within {waited:.3g} s"
        ))

    def _fail(self, err: BaseException) -> None:
        fut = self.future
        if not fut.done():
            fut.set_exception(err)
            fut.exception()  # retrieved: a caller that gave up must not leave a warning

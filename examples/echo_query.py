"""A custom KRPC method: one node answers ``echo`` queries, another sends them.

    python examples/echo_query.py                              # on a local test network
    python examples/echo_query.py --bootstrap router.bittorrent.com:6881

The server registers a handler for the new method (``register_handler``); the client sends it
with ``query``, which the core matches to its reply (exact address, random transaction id) and
times out like any query. A handler answers with the reply's fields, or raises ``QueryError``
to answer with a KRPC error. Both nodes run in this process; without ``--bootstrap`` they join a
16-node test network of their own on 127.0.157.x (loopback only).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from dhtviewer import Dht, LocalTestnet, QueryError
from dhtviewer.dht.messages import Addr, Query, UnknownQuery


def echo(query: Query, addr: Addr) -> dict[bytes, object]:
    """``a: {say: ...}`` -> ``r: {echo: ..., seen_from: "ip:port"}``."""
    args = query.args if isinstance(query, UnknownQuery) else {}
    said = args.get(b"say")
    if not isinstance(said, bytes):
        raise QueryError(203, "echo needs a byte string 'say'")
    return {b"echo": said, b"seen_from": f"{addr[0]}:{addr[1]}".encode()}


async def run(bootstrap: list[str], host: str) -> int:
    async with Dht(bootstrap=bootstrap, bind=(host, 0)) as server, Dht(
        bootstrap=bootstrap, bind=(host, 0)
    ) as client:
        server.register_handler("echo", echo)
        bound = server.local_address
        assert bound is not None
        # Bound to every interface: ask it on loopback (a query needs a real address).
        where = ("127.0.0.1", bound[1]) if bound[0] == "0.0.0.0" else bound
        started = time.perf_counter()
        reply = await client.query(where, "echo", {"say": b"hello, DHT"}, timeout=5)
        rtt = (time.perf_counter() - started) * 1000
        seen = reply.extra.get(b"seen_from")
        seen_from = seen.decode() if isinstance(seen, bytes) else "?"
        print(f"echo from {reply.sender_id.hex()[:16]}…: {reply.extra[b'echo']!r}, "
              f"seen from {seen_from}, {rtt:.1f} ms")
        try:
            await client.query(where, "echo", {"say": 42}, timeout=5)
        except QueryError as err:
            print(f"a bad query is answered with an error: {err.code} {err.message}")
        try:
            await client.query(where, "no_such_method", timeout=5)
        except QueryError as err:
            print(f"an unknown method too: {err.code} {err.message}")
        return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", action="append", metavar="HOST:PORT",
                        help="join the DHT there (repeatable); default: a local test network")
    args = parser.parse_args()
    if args.bootstrap:
        return await run(args.bootstrap, "0.0.0.0")
    async with LocalTestnet(16, "127.0.157.1", port=0, seed=157) as net:
        return await run([f"{ip}:{port}" for ip, port in net.bootstrap_addrs], "127.0.157.200")


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

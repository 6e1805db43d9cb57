"""Map the DHT's id space with an async crawler of ``find_node`` lookups.

    python examples/crawl_id_space.py                          # on a local test network
    python examples/crawl_id_space.py --bootstrap router.bittorrent.com:6881 --bits 6

The id space is cut into 2**bits slices by leading bits; one lookup per slice (a few at once)
asks for the nodes closest to a random id in it, and every node that answers any lookup is
counted in its slice. The result is a histogram of where the nodes are: flat on a healthy DHT,
whose ids are uniformly random. Without ``--bootstrap`` it crawls a 64-node test network of its
own on 127.0.156.x (loopback only) and says how many of its nodes it found.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter

from dhtviewer import Dht, LocalTestnet, events
from dhtviewer.net.session import SessionEvent

ID_BITS = 160


def slice_of(node_id: bytes, bits: int) -> int:
    return int.from_bytes(node_id, "big") >> (ID_BITS - bits)


def random_id_in(slice_index: int, bits: int, rng: random.Random) -> bytes:
    rest = rng.getrandbits(ID_BITS - bits)
    return ((slice_index << (ID_BITS - bits)) | rest).to_bytes(20, "big")


async def crawl(dht: Dht, bits: int, parallel: int, timeout: float) -> set[bytes]:
    seen: set[bytes] = set()

    def on_answer(event: SessionEvent) -> None:
        if isinstance(event, events.LookupResponse):
            seen.add(event.node_id)

    unsubscribe = dht.subscribe(on_answer, kinds=events.LookupResponse)
    rng = random.Random(1)
    gate = asyncio.Semaphore(parallel)

    async def one(slice_index: int) -> None:
        async with gate:
            await dht.find_node(random_id_in(slice_index, bits, rng), timeout=timeout)

    try:
        await asyncio.gather(*(one(i) for i in range(2**bits)))
    finally:
        unsubscribe()
    return seen


def histogram(ids: set[bytes], bits: int) -> None:
    counts = Counter(slice_of(i, bits) for i in ids)
    top = max(counts.values(), default=1)
    width = (bits + 3) // 4
    for s in range(2**bits):
        n = counts.get(s, 0)
        print(f"  {s:0{width}x}…  {'#' * round(40 * n / top):<40} {n}")


async def run(bootstrap: list[str], bind: tuple[str, int], bits: int, parallel: int,
              timeout: float) -> set[bytes]:
    async with Dht(bootstrap=bootstrap, bind=bind) as dht:
        found = await crawl(dht, bits, parallel, timeout)
        print(f"{len(found)} distinct nodes answered {2**bits} lookups; by leading bits:")
        histogram(found, bits)
        return found


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", action="append", metavar="HOST:PORT",
                        help="join the DHT there (repeatable); default: a local test network")
    parser.add_argument("--bits", type=int, default=4, choices=range(1, 11),
                        help="leading bits that name a slice (2**bits lookups)")
    parser.add_argument("--parallel", type=int, default=4, help="lookups at once")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per lookup")
    args = parser.parse_args()
    if args.bootstrap:
        found = await run(args.bootstrap, ("0.0.0.0", 0), args.bits, args.parallel,
                          args.timeout)
        return 0 if found else 1
    async with LocalTestnet(64, "127.0.156.1", port=0, seed=156) as net:
        boot = [f"{ip}:{port}" for ip, port in net.bootstrap_addrs]
        found = await run(boot, ("127.0.156.200", 0), args.bits, args.parallel, args.timeout)
        members = {n.node_id for n in net.nodes}
        print(f"found {len(found & members)} of the test network's {len(members)} nodes")
        return 0 if len(found & members) >= len(members) * 3 // 4 else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

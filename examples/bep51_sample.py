"""Ask DHT nodes which info-hashes they store, with BEP 51 ``sample_infohashes``.

    python examples/bep51_sample.py                            # on a local test network
    python examples/bep51_sample.py --bootstrap router.bittorrent.com:6881 --nodes 50

Nodes are found with a few ``find_node`` lookups of random ids; each is then asked once for a
sample of the info-hashes it stores (``Dht.sample``). A node tells how many it has in all
(``num``) and how long to wait before asking again (``interval``); one that does not speak BEP
51 answers with an error. Without ``--bootstrap`` it samples a 32-node test network of its own
on 127.0.159.x (loopback only), where a few info-hashes were announced, and checks it saw them.
"""

from __future__ import annotations

import argparse
import asyncio
import random

from dhtviewer import Dht, LocalTestnet, SampleResult
from dhtviewer.dht.messages import Addr


async def known_nodes(dht: Dht, lookups: int) -> list[Addr]:
    rng = random.Random(51)
    found: dict[Addr, None] = {}
    for _ in range(lookups):
        result = await dht.find_node(rng.getrandbits(160).to_bytes(20, "big"), timeout=20)
        found.update((addr, None) for _, addr in result.closest)
    for bucket in dht.routing_snapshot().buckets:
        found.update((n.addr, None) for n in bucket.nodes)
    return list(found)


async def sample_all(dht: Dht, nodes: list[Addr], parallel: int) -> list[SampleResult]:
    gate = asyncio.Semaphore(parallel)

    async def one(addr: Addr) -> SampleResult | None:
        async with gate:
            try:
                return await dht.sample(addr, timeout=5)
            except TimeoutError:
                return None

    results = await asyncio.gather(*(one(a) for a in nodes))
    return [r for r in results if r is not None]


async def run(bootstrap: list[str], host: str, max_nodes: int) -> set[bytes]:
    async with Dht(bootstrap=bootstrap, bind=(host, 0)) as dht:
        nodes = (await known_nodes(dht, lookups=4))[:max_nodes]
        answers = await sample_all(dht, nodes, parallel=8)
        speaking = [a for a in answers if a.error is None]
        hashes = {h for a in speaking for h in a.samples}
        print(f"asked {len(nodes)} nodes: {len(answers)} answered, {len(speaking)} speak BEP 51")
        for a in sorted(speaking, key=lambda a: -(a.num or 0))[:10]:
            where = f"{a.addr[0]}:{a.addr[1]}"
            print(f"  {where:<22} stores {a.num or 0:>4}, sent "
                  f"{len(a.samples):>3}, ask again in {a.interval} s")
        print(f"{len(hashes)} distinct info-hashes sampled")
        for h in sorted(hashes)[:10]:
            print(f"  {h.hex()}")
        return hashes


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", action="append", metavar="HOST:PORT",
                        help="join the DHT there (repeatable); default: a local test network")
    parser.add_argument("--nodes", type=int, default=64, help="nodes to sample at most")
    args = parser.parse_args()
    if args.bootstrap:
        await run(args.bootstrap, "0.0.0.0", args.nodes)
        return 0
    async with LocalTestnet(32, "127.0.159.1", port=0, seed=159) as net:
        boot = [f"{ip}:{port}" for ip, port in net.bootstrap_addrs]
        hashes = await run(boot, "127.0.159.200", args.nodes)
        announced = set(net.announced)
    print(f"{len(hashes & announced)} of the {len(announced)} announced info-hashes seen")
    return 0 if announced <= hashes else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

"""A routing policy with larger buckets far from our id, next to the default one.

    python examples/wide_buckets.py                            # on a local test network
    python examples/wide_buckets.py --bootstrap router.bittorrent.com:6881

Bucket ``i`` holds the nodes whose ids share ``i`` leading bits with ours: bucket 0 covers half
of the id space, bucket 1 a quarter, ... yet each holds K nodes by default. Giving the far
buckets more room (as libtorrent's ``dht_extended_routing_table`` does) lets a node reach any
part of the space in fewer hops. The policy is a ``RoutingPolicy`` subclass; the session makes
one per node from a factory at every start. Both nodes look up the same random ids, then their
tables are printed side by side. Without ``--bootstrap`` they join a 96-node test network of
their own on 127.0.158.x (loopback only).
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import fields

from dhtviewer import Dht, DhtSettings, LocalTestnet, RoutingPolicy, RoutingSnapshot


class WideFarBuckets(RoutingPolicy):
    """``factor`` times K in the ``far`` buckets farthest from our id, K elsewhere."""

    far = 3
    factor = 4

    def bucket_size(self, index: int) -> int:
        return self.k * self.factor if index < self.far else self.k


def wide_policy(settings: DhtSettings, family: int) -> RoutingPolicy:
    # Start from the settings' policy: it carries allow_local, the BEP 42 and subnet rules.
    base = RoutingPolicy.from_settings(settings)
    return WideFarBuckets(**{f.name: getattr(base, f.name) for f in fields(base)})


def show(plain: RoutingSnapshot, wide: RoutingSnapshot) -> None:
    print("bucket   default (nodes/capacity)   wide far buckets (nodes/capacity)")
    for i in range(max(len(plain.buckets), len(wide.buckets))):
        cells = []
        for snap in (plain, wide):
            b = snap.buckets[i] if i < len(snap.buckets) else None
            cells.append("" if b is None else f"{len(b.nodes):3}/{b.capacity:<3}")
        print(f"{i:6}   {cells[0]:<26} {cells[1]}")
    print(f"total    {plain.size:<26} {wide.size}")


async def run(bootstrap: list[str], host: str, lookups: int) -> tuple[int, int]:
    async with Dht(bootstrap=bootstrap, bind=(host, 0)) as plain, Dht(
        bootstrap=bootstrap, bind=(host, 0), routing_policy=wide_policy
    ) as wide:
        rng = random.Random(7)
        for _ in range(lookups):
            target = rng.getrandbits(160).to_bytes(20, "big")
            await asyncio.gather(plain.find_node(target, timeout=20),
                                 wide.find_node(target, timeout=20))
        p, w = plain.routing_snapshot(), wide.routing_snapshot()
        show(p, w)
        far = WideFarBuckets.far
        return (sum(len(b.nodes) for b in p.buckets[:far]),
                sum(len(b.nodes) for b in w.buckets[:far]))


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", action="append", metavar="HOST:PORT",
                        help="join the DHT there (repeatable); default: a local test network")
    parser.add_argument("--lookups", type=int, default=24, help="random ids looked up")
    args = parser.parse_args()
    if args.bootstrap:
        await run(args.bootstrap, "0.0.0.0", args.lookups)
        return 0
    async with LocalTestnet(96, "127.0.158.1", port=0, seed=158) as net:
        boot = [f"{ip}:{port}" for ip, port in net.bootstrap_addrs]
        plain_far, wide_far = await run(boot, "127.0.158.200", args.lookups)
    print(f"far buckets: {plain_far} nodes by default, {wide_far} with the wide policy")
    return 0 if wide_far > plain_far else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

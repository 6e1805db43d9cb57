"""Find the peers of an info-hash with the blocking API: no asyncio, no ``await``.

    python examples/find_peers_blocking.py                    # on a local test network
    python examples/find_peers_blocking.py --bootstrap router.bittorrent.com:6881 INFO_HASH

Without ``--bootstrap`` it starts a 24-node test network of its own on 127.0.155.x (loopback
only) and looks for one of the info-hashes announced there.
"""

from __future__ import annotations

import argparse

from dhtviewer import Dht
from dhtviewer.net.testnet import BackgroundTestnet, LocalTestnet


def find_peers(bootstrap: list[str], info_hash: str, bind: tuple[str, int], timeout: float
               ) -> int:
    with Dht.blocking(bootstrap=bootstrap, bind=bind) as dht:
        print(f"node {dht.node_id.hex()} on {dht.local_address}: {dht.state}, "
              f"{dht.stats()['routing_nodes']:.0f} contacts")
        result = dht.find_peers(info_hash, timeout=timeout)
        print(f"{len(result.peers)} peers for {info_hash} after asking {result.queried} nodes "
              f"({result.responded} answered) in {result.elapsed:.2f} s")
        for ip, port in result.peers:
            print(f"  {ip}:{port}")
        return 0 if result.peers else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("info_hash", nargs="?", help="40 hex digits, base32 or a magnet link")
    parser.add_argument("--bootstrap", action="append", metavar="HOST:PORT",
                        help="join the DHT there (repeatable); default: a local test network")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.bootstrap:
        if not args.info_hash:
            parser.error("give an INFO_HASH to look for")
        return find_peers(args.bootstrap, args.info_hash, ("0.0.0.0", 0), args.timeout)
    with BackgroundTestnet(LocalTestnet(24, "127.0.155.1", port=0, seed=155)) as net:
        info_hash = args.info_hash or next(iter(net.announced)).hex()
        boot = [f"{ip}:{port}" for ip, port in net.bootstrap_addrs]
        return find_peers(boot, info_hash, ("127.0.155.200", 0), args.timeout)


if __name__ == "__main__":
    raise SystemExit(main())

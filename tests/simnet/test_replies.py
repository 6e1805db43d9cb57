"""The simulated nodes' reply writer is byte-identical to the core codec, and decodes back."""

from __future__ import annotations

import random

import pytest

from dhtviewer.dht import compact, krpc
from dhtviewer.dht.messages import NodeInfo, Response
from dhtviewer.simnet.replies import response


def _peer(rng: random.Random) -> tuple[str, int]:
    return (f"127.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            rng.randrange(1, 65536))


@pytest.mark.parametrize("seed", range(80))
def test_reply_bytes_equal_krpc_encode(seed: int) -> None:
    rng = random.Random(seed)
    tid = rng.randbytes(rng.choice([1, 2, 4, 8]))
    node_id = rng.randbytes(20)
    asker = _peer(rng)
    nodes = tuple(NodeInfo(rng.randbytes(20), _peer(rng)) for _ in range(rng.choice([0, 3, 8])))
    peers = tuple(_peer(rng) for _ in range(rng.choice([0, 1, 50])))
    token = rng.randbytes(8) if rng.random() < 0.5 else None
    version = rng.choice([None, b"LT\x02\x00", b"UT\xb4\x45"])
    bep51 = rng.random() < 0.3
    samples = tuple(rng.randbytes(20) for _ in range(rng.choice([0, 5]))) if bep51 else ()
    # BEP 33 filters and BEP 44 item fields, in every combination a node sends
    scrape = (rng.randbytes(256), rng.randbytes(256)) if rng.random() < 0.3 else None
    kind = rng.choice(["none", "immutable", "mutable", "seq only"])
    v = b"12:Hello World!" if kind in ("immutable", "mutable") else None
    k, sig = (rng.randbytes(32), rng.randbytes(64)) if kind == "mutable" else (None, None)
    seq = rng.randrange(1 << 40) if kind in ("mutable", "seq only") else None
    expect = krpc.encode(Response(
        tid, node_id, nodes=nodes, values=peers, token=token, external_ip=asker,
        version=version, interval=21600 if bep51 else None,
        num=len(samples) + 3 if bep51 else None, samples=samples,
        bf_seeds=scrape[0] if scrape else None, bf_peers=scrape[1] if scrape else None,
        v=v, k=k, seq=seq, sig=sig,
    ))
    got = response(
        tid, node_id, compact.encode_peer(asker), version,
        nodes=compact.encode_nodes(nodes) if nodes else None, token=token,
        values=[b"6:" + p for p in compact.encode_values(peers)],
        interval=21600 if bep51 else None, num=len(samples) + 3 if bep51 else None,
        samples=b"".join(samples) if bep51 else None, scrape=scrape, v=v, k=k, seq=seq, sig=sig,
    )
    assert got == expect
    decoded = krpc.decode(got)
    assert isinstance(decoded, Response) and decoded.nodes == nodes and decoded.values == peers
    assert (decoded.v, decoded.k, decoded.seq, decoded.sig) == (v, k, seq, sig)
    assert (decoded.bf_seeds, decoded.bf_peers) == (scrape or (None, None))

"""How many distinct info-hashes the DHT holds, estimated from a BEP 51 crawl.

A crawl sees each info-hash at some of the nodes that store it (an announce reaches about K = 8
nodes, and each node returns a random subset of its store). Counting the distinct info-hashes
seen gives a lower bound; the question is how many were never seen. This is the classic
species-richness problem on *incidence* data (which sampling units, here nodes, reported each
"species"), and the estimator is Chao2 in its bias-corrected form (Chao 1987; Colwell's
EstimateS manual): from the info-hashes reported by exactly one node (``q1``) and by exactly two
(``q2``), over ``m`` sampled nodes,

    S = S_obs + (m - 1) / m * q1 * (q1 - 1) / (2 * (q2 + 1))

with the log-normal 95 % interval of the unseen part. Chao2 is a lower-bound estimator: it is
nearly unbiased when every info-hash is about equally likely to be seen, and it underestimates
when some are much harder to see than others (an info-hash stored on fewer nodes, or on nodes
holding thousands). It needs repeated sightings: with few nodes sampled (q2 = 0) the interval
is wide, and ``reliable`` is false until at least ``MIN_RELIABLE_NODES`` nodes answered.

Pure arithmetic, no I/O: the sample store (``net/sample_store.py``) supplies the counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MIN_RELIABLE_NODES", "PopulationEstimate", "chao2"]

MIN_RELIABLE_NODES = 20
_Z95 = 1.96


@dataclass(frozen=True, slots=True)
class PopulationEstimate:
    """``observed`` distinct info-hashes; ``estimate`` of how many exist, with a 95 % interval
    ``low``..``high``; ``q1``/``q2``: seen at exactly one/two nodes; ``nodes`` sampled."""

    observed: int
    estimate: float
    low: float
    high: float
    q1: int
    q2: int
    nodes: int

    @property
    def reliable(self) -> bool:
        return self.nodes >= MIN_RELIABLE_NODES and self.q2 > 0


def chao2(observed: int, q1: int, q2: int, nodes: int) -> PopulationEstimate:
    """Bias-corrected Chao2 from incidence counts (see the module docstring)."""
    if min(observed, q1, q2, nodes) < 0 or q1 + q2 > observed:
        raise ValueError(f"inconsistent counts: S={observed} q1={q1} q2={q2} m={nodes}")
    if nodes <= 1 or q1 == 0:
        # One sampling unit cannot tell seen-once from rare; no singletons: nothing unseen.
        return PopulationEstimate(observed, float(observed), observed, observed, q1, q2, nodes)
    a = (nodes - 1) / nodes
    unseen = a * q1 * (q1 - 1) / (2 * (q2 + 1))
    var = (
        a * q1 * (q1 - 1) / (2 * (q2 + 1))
        + a * a * q1 * (2 * q1 - 1) ** 2 / (4 * (q2 + 1) ** 2)
        + a * a * q1 * q1 * q2 * (q1 - 1) ** 2 / (4 * (q2 + 1) ** 4)
    )
    if unseen <= 0:
        low = high = float(observed)
    else:
        k = math.exp(_Z95 * math.sqrt(math.log1p(var / (unseen * unseen))))
        low, high = observed + unseen / k, observed + unseen * k
    return PopulationEstimate(observed, observed + unseen, low, high, q1, q2, nodes)

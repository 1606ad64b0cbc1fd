"""The SecAgg+ communication graph: a k-regular Harary graph over a random permutation of clients.

Bell et al. (2020) show that with k = O(log n) neighbours per client, secrecy and dropout robustness
hold with high probability; k = n - 1 is the complete graph of the original SecAgg.

>>> g = harary_graph(list(range(10)), 4)
>>> sorted(len(v) for v in g.values()) == [4] * 10
True
>>> all(u in g[v] for u in g for v in g[u])
True
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# Fresh per round from the OS CSPRNG, so no client can arrange to neighbour a target. Module-level so
# a test can swap in a seeded random.Random: which ring a round draws decides whether a given dropout
# pattern is survivable (docs/secure-aggregation.md, "Dropouts").
_RING_RNG: random.Random = random.SystemRandom()


def harary_graph(clients: Sequence[int], k: int) -> dict[int, frozenset[int]]:
    n = len(clients)
    if not 2 <= k <= n - 1:
        raise ValueError(f"need 2 <= k <= n - 1, got k={k} for n={n}")
    if k == n - 1:
        return {c: frozenset(x for x in clients if x != c) for c in clients}
    if k % 2:
        raise ValueError(f"a sparse Harary graph needs an even k, got {k}")
    ring = list(clients)
    _RING_RNG.shuffle(ring)
    half = k // 2
    return {
        ring[i]: frozenset(ring[(i + off) % n] for off in range(-half, half + 1) if off != 0)
        for i in range(n)
    }

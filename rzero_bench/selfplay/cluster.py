"""Average-linkage agglomerative clustering with a distance threshold (numpy only).

Reproduces what the official R-Zero code gets from scikit-learn
``AgglomerativeClustering(n_clusters=None, distance_threshold=t, metric="precomputed",
linkage="average")``: scikit-learn hands the upper triangle to SciPy's nearest-neighbour-chain
``linkage(method="average")``, sorts the merges by height (stable), and cuts the tree so that
exactly the merges with height ``< t`` are kept (``n_clusters_ = #(heights >= t) + 1``).

This module runs the same nearest-neighbour chain: the same scan order and tie-breaking (the
chain's previous element wins ties, otherwise the lowest index with the strictly smallest
distance), the same Lance-Williams update ``d(k, x u y) = (n_x d(k, x) + n_y d(k, y)) / (n_x + n_y)``
evaluated with the same float operations, and the new cluster stored in the slot of the larger
index. Ties between equal distances are common for BLEU distances of templated questions, and
they decide the partition, so matching SciPy's order (not only its maths) is what makes the labels
identical. Each chain step is one vectorised row scan: O(n^2) work, O(n) Python steps.

Labels are numbered by first appearance (0 for the first string's cluster, ...).
"""

from __future__ import annotations

import numpy as np


def average_linkage_merges(dist: np.ndarray) -> list[tuple[int, int, float]]:
    """The (x, y, height) merges of SciPy's nearest-neighbour chain, in chain order (x < y)."""
    d = np.array(dist, dtype=np.float64, copy=True)
    n = d.shape[0]
    if d.ndim != 2 or d.shape[1] != n:
        raise ValueError(f"distance matrix must be square, got shape {d.shape}")
    if n and not np.all(np.isfinite(d)):
        raise ValueError("distance matrix must contain only finite values")
    # SciPy reads the upper triangle only (condensed form); mirror it
    iu = np.triu_indices(n, k=1)
    d[(iu[1], iu[0])] = d[iu]
    np.fill_diagonal(d, np.inf)
    size = np.ones(n, dtype=np.int64)
    chain: list[int] = []
    merges: list[tuple[int, int, float]] = []
    first = 0
    for _ in range(n - 1):
        if not chain:
            while size[first] == 0:
                first += 1
            chain.append(first)
        while True:
            x = chain[-1]
            row = d[x]
            i = int(row.argmin())
            best = float(row[i])
            if len(chain) > 1:
                prev = chain[-2]
                if not best < float(row[prev]):
                    y, best = prev, float(row[prev])
                    break
            y = i
            chain.append(y)
        chain.pop()
        chain.pop()
        if x > y:
            x, y = y, x
        nx, ny = int(size[x]), int(size[y])
        merges.append((x, y, best))
        size[x] = 0
        size[y] = nx + ny
        new = (nx * d[x] + ny * d[y]) / (nx + ny)
        d[y, :] = new
        d[:, y] = new
        d[x, :] = np.inf
        d[:, x] = np.inf
        d[y, y] = np.inf
    return merges


def _canonical(roots: list[int]) -> list[int]:
    seen: dict[int, int] = {}
    return [seen.setdefault(r, len(seen)) for r in roots]


def average_linkage_labels(dist: np.ndarray, threshold: float) -> list[int]:
    """Cluster labels keeping exactly the merges with height ``< threshold`` (scikit-learn's cut)."""
    n = int(np.shape(dist)[0])
    if n == 0:
        return []
    if n == 1:
        return [0]
    merges = average_linkage_merges(dist)
    heights = np.array([h for _, _, h in merges])
    order = np.argsort(heights, kind="mergesort")
    keep = n - 1 - int(np.count_nonzero(heights >= threshold))
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for k in order[:keep].tolist():
        x, y, _ = merges[k]
        rx, ry = find(x), find(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return _canonical([find(a) for a in range(n)])


def canonical_labels(labels: list[int] | np.ndarray) -> list[int]:
    """Rename labels by first appearance, so two labelings that differ by renaming compare equal."""
    return _canonical([int(v) for v in labels])

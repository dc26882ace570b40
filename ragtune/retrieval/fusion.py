"""Reciprocal rank fusion (Cormack et al. 2009): score(d) = Σ_r 1 / (c + rank_r(d)), rank from 1."""

from __future__ import annotations

import numpy as np

from ragtune.retrieval.types import SearchResults, empty_results


def rrf(results: list[SearchResults], k: int, c: float = 60.0) -> SearchResults:
    """Fuse several result lists (each (n, k_i)) into one (n, k)."""
    n = results[0].ids.shape[0]
    out = empty_results(n, k)
    for qi in range(n):
        # Concatenate every list's (id, 1/(c+rank)) and sum per id with numpy (no Python dict).
        ids = np.concatenate([r.ids[qi] for r in results])
        ranks = np.concatenate([np.arange(1, r.ids.shape[1] + 1) for r in results])
        keep = ids >= 0
        ids, contrib = ids[keep], 1.0 / (c + ranks[keep])
        if ids.size == 0:
            continue
        uniq, inv = np.unique(ids, return_inverse=True)
        score = np.bincount(inv, weights=contrib)
        order = np.argsort(-score, kind="stable")[:k]
        out.ids[qi, : order.size] = uniq[order]
        out.scores[qi, : order.size] = score[order]
    return out

"""The typed result every retriever returns."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SearchResults(NamedTuple):
    """Row ids into the index's chunk list and their scores, best first.

    ids:    (n_queries, k) int64, -1 where fewer than k hits exist
    scores: (n_queries, k) float32, -inf where ids == -1
    """

    ids: np.ndarray
    scores: np.ndarray


def empty_results(n: int, k: int) -> SearchResults:
    return SearchResults(np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32))

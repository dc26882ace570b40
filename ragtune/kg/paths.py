"""Path search over a `KG`, vectorised with numpy: every step handles a whole frontier at once.

Three searches Reasoning on Graphs (RoG, Luo et al. 2024) needs:

    follow(kg, starts, ["directed_by", "~directed_by"])    retrieval: ground a relation plan
    shortest_relation_paths(kg, question_ids, answer_ids)  training targets for the planner
    relation_paths(kg, starts, hops=2)                     the plans that exist (for a trie that
                                                            constrains decoding)

Relations in a plan are names; ``~r`` walks relation ``r`` backwards (from object to subject).
Relation sequences come back shortest first, then by relation id with every forward relation
before every backward one (relation ids follow name order, so for ASCII names this is plain
name order: "~" sorts after letters and digits).

In arrays a step is a *directed relation code*: ``r`` (the relation id) forwards, ``r +
kg.num_relations`` backwards; `kg.relation_name(code)` turns a code back into ``r`` / ``~r``.

A frontier step is the same few array operations whatever its size: look up the (entity,
relation) slices of all frontier entities with two `searchsorted` calls on the store's sorted
key array, then gather the slices with one ragged `np.repeat`/`arange` (`_ragged`). Paths are
kept as one node column per hop plus, per row, the row of the previous column it extends, and
assembled into a matrix at the end. Because CSR slices are sorted by neighbour id and starts
are sorted, paths come out in lexicographic order of their node ids, so "the first
`max_paths`" is a deterministic choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ragtune.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from ragtune.kg.graph import KG

I64 = np.int64


class Paths(NamedTuple):
    """Paths that follow one plan; row i is e0 -r1-> e1 -r2-> ... (lexicographic by node id)."""

    nodes: np.ndarray  # (n_paths, hops+1) int64 entity ids
    rels: np.ndarray  # (n_paths, hops) int64 directed relation codes (r, or r + n_rel for ~r)
    truncated: bool  # more paths exist than were kept (max_paths)

    @property
    def ends(self) -> np.ndarray:
        """The distinct last entities (the candidate answers), ascending."""
        return unique(self.nodes[:, -1])

    @property
    def count(self) -> int:
        return len(self.nodes)


class ManyPaths(NamedTuple):
    """`follow_many`'s result: the paths of every query in one set of arrays.

    Query i's paths are rows offsets[i]:offsets[i+1]. Plans may differ in length; columns past
    a query's plan length hold -1.
    """

    query: np.ndarray  # (n_paths,) int64 query index, ascending
    nodes: np.ndarray  # (n_paths, max_hops+1) int64 entity ids, -1 padded
    rels: np.ndarray  # (n_paths, max_hops) int64 directed relation codes, -1 padded
    offsets: np.ndarray  # (n_queries+1,) int64
    hops: np.ndarray  # (n_queries,) int64 plan length per query
    truncated: np.ndarray  # (n_queries,) bool

    def paths(self, i: int) -> Paths:
        """Query i's paths as a `Paths`."""
        a, b, h = int(self.offsets[i]), int(self.offsets[i + 1]), int(self.hops[i])
        return Paths(self.nodes[a:b, : h + 1], self.rels[a:b, :h], bool(self.truncated[i]))

    def ends(self, i: int) -> np.ndarray:
        """The distinct last entities of query i's paths, ascending."""
        return self.paths(i).ends


def unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a 1-d array.

    np.unique hashes integers since numpy 2.3 and then sorts: about 10x slower than one sort
    on millions of ids (2.1 s vs 0.2 s for 2M int64), and slower on tiny arrays too.
    """
    a = np.sort(a)
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def unique_inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each input value in them), like np.unique's."""
    order = np.argsort(a, kind="stable")
    srt = a[order]
    new = np.empty(len(a), dtype=bool)
    new[:1] = True
    np.not_equal(srt[1:], srt[:-1], out=new[1:])
    inv = np.empty(len(a), dtype=I64)
    inv[order] = np.cumsum(new) - 1
    return srt[new], inv


# --------------------------------------------------------------------------- frontier steps


def _ragged(lo: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ranges lo[i] .. lo[i]+lens[i]-1: (row (m,), index (m,)), rows ascending."""
    row = np.repeat(np.arange(len(lens), dtype=I64), lens)  # (m,) which range
    out_start = np.cumsum(lens) - lens  # (k,) where range i starts in the output
    idx = np.arange(len(row), dtype=I64) + (lo - out_start)[row]
    return row, idx


def _lookup(kg: KG, nodes: np.ndarray, codes: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """Where each frontier entity's edges by its directed relation code(s) are.

    `codes` is one code or one per row. Returns (lo (k,), lens (k,), side): row i's
    neighbours are nbr[lo[i]:lo[i]+lens[i]] of the "fwd" or "rev" CSR, or, when rows mix
    directions ("mixed"), of the virtual concatenation [fwd.nbr; rev.nbr].
    """
    n_rel = kg.num_relations
    if isinstance(codes, int):
        side = "rev" if codes >= n_rel else "fwd"
        adj = kg.rev if codes >= n_rel else kg.fwd
        if len(nodes) == 1:  # a single entity (the usual first hop): one call
            q = int(nodes[0]) * n_rel + codes % n_rel
            b = adj.key.searchsorted((q, q + 1))  # (2,) its slice
            return b[:1], b[1:] - b[:1], side
        q = nodes * n_rel + codes % n_rel  # (k,) int64 (entity, relation) keys
        lo = adj.key.searchsorted(q, "left")
        return lo, adj.key.searchsorted(q, "right") - lo, side
    codes = np.asarray(codes, dtype=I64)
    back = codes >= n_rel  # (k,) rows walking their relation backwards
    q = nodes * n_rel + np.where(back, codes - n_rel, codes)
    if not back.any() or back.all():
        side = "rev" if back.any() else "fwd"
        adj = kg.rev if back.any() else kg.fwd
        lo = adj.key.searchsorted(q, "left")
        return lo, adj.key.searchsorted(q, "right") - lo, side
    lo = np.empty(len(q), dtype=I64)
    hi = np.empty(len(q), dtype=I64)
    for mask, adj, base in ((~back, kg.fwd, 0), (back, kg.rev, kg.num_edges)):
        lo[mask] = adj.key.searchsorted(q[mask], "left") + base
        hi[mask] = adj.key.searchsorted(q[mask], "right") + base
    return lo, hi - lo, "mixed"


def _gather(kg: KG, lo: np.ndarray, lens: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """The neighbours `_lookup` located: (row (m,), nbr (m,)), rows ascending and, within a
    row, neighbours ascending (CSR slice order)."""
    if side != "mixed":
        nbr_arr = kg.rev.nbr if side == "rev" else kg.fwd.nbr
        if len(lo) == 1:  # a single entity (the usual first hop): a plain slice
            a = int(lo[0])
            return np.zeros(int(lens[0]), dtype=I64), nbr_arr[a : a + int(lens[0])].astype(I64)
        row, idx = _ragged(lo, lens)
        return row, nbr_arr[idx].astype(I64)
    row, idx = _ragged(lo, lens)
    n_e = kg.num_edges
    nbr = np.empty(len(idx), dtype=I64)
    in_rev = idx >= n_e
    nbr[~in_rev] = kg.fwd.nbr[idx[~in_rev]]
    nbr[in_rev] = kg.rev.nbr[idx[in_rev] - n_e]
    return row, nbr


def _edges(kg: KG, nodes: np.ndarray, codes: Any) -> tuple[np.ndarray, np.ndarray]:
    """One whole plan step for a frontier: `_gather` of `_lookup`."""
    return _gather(kg, *_lookup(kg, nodes, codes))


def _clip(lens: np.ndarray, before: np.ndarray, cap: int) -> np.ndarray:
    """Slice lengths cut so no more than `cap` items follow `before` (items ahead of each row)."""
    return np.clip(cap - before, 0, lens)


def _all_edges(
    kg: KG, nodes: np.ndarray, inverse: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every edge at each node, any relation: (row (m,), nbr (m,), code (m,)).

    Forward edges carry code r, and with `inverse` incoming edges walked backwards carry
    r + n_rel. Rows are not sorted when `inverse` (forward block, then backward block).
    """
    parts = [(kg.fwd, 0)] + ([(kg.rev, kg.num_relations)] if inverse else [])
    rows, nbrs, codes = [], [], []
    for adj, off in parts:
        lo = adj.indptr[nodes]
        row, idx = _ragged(lo, adj.indptr[nodes + 1] - lo)
        rows.append(row)
        nbrs.append(adj.nbr[idx].astype(I64))
        codes.append(adj.rel[idx].astype(I64) + off)
    if len(parts) == 1:
        return rows[0], nbrs[0], codes[0]
    return np.concatenate(rows), np.concatenate(nbrs), np.concatenate(codes)


def _degree(kg: KG, nodes: np.ndarray, inverse: bool) -> int:
    d = int((kg.fwd.indptr[nodes + 1] - kg.fwd.indptr[nodes]).sum())
    if inverse:
        d += int((kg.rev.indptr[nodes + 1] - kg.rev.indptr[nodes]).sum())
    return d


def _as_ids(kg: KG, ids: Any) -> np.ndarray:
    """Distinct entity ids, ascending, as int64; None or out-of-range ids raise DataError."""
    if isinstance(ids, int | np.integer):
        ids = [ids]
    elif isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], int):
        if not 0 <= ids[0] < len(kg):  # the common single start: skip the sort
            raise DataError(f"entity id {ids[0]} is out of range (the KG has {len(kg):,} entities)")
        return np.array(ids, dtype=I64)
    elif not isinstance(ids, np.ndarray):
        ids = list(ids)
        if any(i is None for i in ids):
            raise DataError(
                "an entity id is None (kg.entity_id / kg.find_entity found no such name); "
                "drop unknown entities before searching"
            )
    arr = unique(np.asarray(ids, dtype=I64))
    if len(arr) and (arr[0] < 0 or arr[-1] >= len(kg)):
        bad = arr[0] if arr[0] < 0 else arr[-1]
        raise DataError(f"entity id {bad} is out of range (the KG has {len(kg):,} entities)")
    return arr


def _plan(kg: KG, relations: Sequence[str]) -> list[int]:
    if isinstance(relations, str):
        raise ConfigError(
            f"a plan is a list of relation names, got the string {relations!r}; "
            "write [rel] (or split 'r1,r2' on commas)"
        )
    codes = kg._codes  # name -> directed code, filled as plans use names
    out = []
    for r in relations:
        c = codes.get(r)
        if c is None:
            c = codes[r] = kg.directed_relation(r)
        out.append(c)
    return out


def _check_cap(max_paths: int) -> None:
    if max_paths < 1:
        raise ConfigError(f"max_paths must be at least 1, got {max_paths}")


def _assemble(cols: list[np.ndarray], parents: list[np.ndarray], n: int) -> np.ndarray:
    """(n, hops+1) node matrix of the first n rows of the last column, by walking parents."""
    hops = len(parents)
    nodes = np.empty((n, hops + 1), dtype=I64)
    row = np.arange(n, dtype=I64)
    nodes[:, hops] = cols[hops][:n]
    for h in range(hops - 1, -1, -1):
        row = parents[h][row]
        nodes[:, h] = cols[h][row]
    return nodes


# --------------------------------------------------------------------------- follow


def follow(
    kg: KG, start_ids: Iterable[int], relations: Sequence[str], max_paths: int = 10_000
) -> Paths:
    """RoG's retrieval: every path from the start entities whose relations spell `relations`.

    Keeps the first `max_paths` paths in lexicographic order of node ids (starts sorted) and
    sets `truncated` when more exist. Walks, not simple paths: an entity may repeat, as in the
    reference's BFS.
    """
    _check_cap(max_paths)
    plan = _plan(kg, relations)
    starts = _as_ids(kg, start_ids)
    hops = len(plan)
    cols, parents = [starts], []
    truncated = False
    for h, code in enumerate(plan):
        lo, lens, side = _lookup(kg, cols[-1], code)
        if (lens[0] if len(lens) == 1 else lens.sum()) > max_paths:
            if h < hops - 1:
                # Too many partial paths to expand blindly; some may be dead ends, so count
                # completions first to keep exactly the first max_paths full paths.
                return _follow_capped(kg, starts, plan, max_paths)
            lens = _clip(lens, np.cumsum(lens) - lens, max_paths)  # gather only what is kept
            truncated = True
        row, nbr = _gather(kg, lo, lens, side)
        parents.append(row)
        cols.append(nbr)
    n = len(cols[-1])
    rels = np.empty((n, hops), dtype=I64)  # (n, hops): every row spells the plan
    rels[:] = plan
    return Paths(_assemble(cols, parents, n), rels, truncated)


def _follow_capped(kg: KG, starts: np.ndarray, plan: list[int], max_paths: int) -> Paths:
    """`follow` when partial paths outnumber the cap: work over entity sets, then paths.

    1. Forward over distinct entities per hop (at most n_entities each, however many paths).
    2. Backward: completions per entity (how many full paths start there), saturated at
       max_paths+1 so sums stay small.
    3. Forward over paths again, keeping only partial paths that have a completion and start
       before the cap, so no more than ~max_paths partial paths exist at any hop.
    """
    hops = len(plan)
    levels, offs, childs = [starts], [], []
    for code in plan:
        row, nbr = _edges(kg, levels[-1], code)
        nxt, inv = unique_inverse(nbr)
        # row is ascending: off[i]:off[i+1] are entity i's edges in this step.
        offs.append(np.searchsorted(row, np.arange(len(levels[-1]) + 1)))
        childs.append(inv)  # (m,) index of each neighbour into the next level
        levels.append(nxt)
    cap1 = max_paths + 1
    counts = [np.ones(len(levels[-1]), dtype=I64)]
    for h in range(hops - 1, -1, -1):
        cs = np.zeros(len(childs[h]) + 1, dtype=I64)
        np.cumsum(counts[-1][childs[h]], out=cs[1:])
        counts.append(np.minimum(cs[offs[h][1:]] - cs[offs[h][:-1]], cap1))
    counts.reverse()  # counts[h] (len(levels[h]),) completions from each level-h entity
    truncated = int(counts[0].sum()) > max_paths
    idx = np.arange(len(starts), dtype=I64)  # partial path -> index into levels[h]
    idxs, parents = [idx], []
    for h in range(hops):
        c = counts[h][idx]
        before = np.cumsum(c) - c  # full paths ahead of each partial path
        kept = np.flatnonzero((c > 0) & (before < max_paths))
        lo = offs[h][idx[kept]]
        lens = offs[h][idx[kept] + 1] - lo
        if h == hops - 1:  # the last step's edges are full paths: take only up to the cap
            lens = _clip(lens, before[kept], max_paths)
        row, e = _ragged(lo, lens)
        parents.append(kept[row])
        idx = childs[h][e]
        idxs.append(idx)
    cols = [levels[h][idxs[h]] for h in range(hops + 1)]
    n = len(idx)
    rels = np.repeat(np.array([plan], dtype=I64).reshape(1, hops), n, axis=0)  # (n, hops)
    return Paths(_assemble(cols, parents, n), rels, truncated)


def follow_many(
    kg: KG,
    starts: Sequence[Any],
    plans: Sequence[Sequence[str]],
    max_paths: int = 10_000,
) -> ManyPaths:
    """`follow` for many queries at once: query i starts at starts[i] (an id or a list of ids)
    and follows plans[i]. One vectorised pass per hop for all queries with plans of the same
    length; a query whose partial paths pass the cap mid-plan is redone by `follow`.
    """
    _check_cap(max_paths)
    n_q = len(plans)
    if len(starts) != n_q:
        raise ConfigError(f"follow_many: {len(starts)} starts but {n_q} plans; give one each")
    codes = [_plan(kg, p) for p in plans]
    hops = np.fromiter((len(c) for c in codes), dtype=I64, count=n_q)
    # (query, start) pairs
    if isinstance(starts, np.ndarray) and starts.ndim == 1 and starts.dtype.kind in "iu":
        q_of = np.arange(n_q, dtype=I64)
        s_of = starts.astype(I64)
    else:
        lists = [[s] if s is None or isinstance(s, int | np.integer) else list(s) for s in starts]
        if any(i is None for ls in lists for i in ls):
            raise DataError("a start id is None (an unknown entity?); drop it before searching")
        q_of = np.repeat(np.arange(n_q, dtype=I64), [len(ls) for ls in lists])
        s_of = np.asarray([i for ls in lists for i in ls], dtype=I64)
    if len(s_of) and (s_of.min() < 0 or s_of.max() >= len(kg)):
        raise DataError(f"a start id is out of range (the KG has {len(kg):,} entities)")
    max_h = int(hops.max()) if n_q else 0
    n = max(len(kg), 1)
    out_q, out_nodes, out_rels = [], [], []
    truncated = np.zeros(n_q, dtype=bool)
    redo: list[int] = []
    for length in unique(hops).tolist():
        in_group = hops[q_of] == length
        # Rows sorted by (query, start) and distinct: every later column keeps that order.
        key = unique(q_of[in_group] * n + s_of[in_group])
        qcol, cols, parents = key // n, [key % n], []
        gq = np.flatnonzero(hops == length)  # the group's queries, ascending
        plan_mat = np.asarray([codes[i] for i in gq], dtype=I64).reshape(len(gq), length)
        local = np.searchsorted(gq, qcol)  # (rows,) query -> row of plan_mat
        for h in range(length):
            lo, lens, side = _lookup(kg, cols[-1], plan_mat[local, h])
            per_q = np.bincount(qcol, weights=lens, minlength=n_q)  # (n_q,) paths after step
            over = per_q > max_paths
            if over.any():
                if h < length - 1:  # those queries need the exact capped search
                    redo.extend(np.flatnonzero(over).tolist())
                    lens = np.where(over[qcol], 0, lens)
                else:  # full paths: keep each query's first max_paths (rows grouped by query)
                    truncated |= over
                    before = np.cumsum(lens) - lens
                    first = np.searchsorted(qcol, qcol)  # (rows,) first row of its query
                    lens = _clip(lens, before - before[first], max_paths)
            row, nbr = _gather(kg, lo, lens, side)
            parents.append(row)
            cols.append(nbr)
            qcol, local = qcol[row], local[row]
        nodes = _assemble(cols, parents, len(cols[-1]))
        rels = np.full((len(nodes), max_h), -1, dtype=I64)
        rels[:, :length] = plan_mat[local]
        out_q.append(qcol)
        out_nodes.append(_pad(nodes, max_h + 1))
        out_rels.append(rels)
    for i in sorted(set(redo)):
        got = follow(kg, s_of[q_of == i], plans[i], max_paths=max_paths)
        truncated[i] = got.truncated
        out_q.append(np.full(got.count, i, dtype=I64))
        out_nodes.append(_pad(got.nodes, max_h + 1))
        rels = np.full((got.count, max_h), -1, dtype=I64)
        rels[:, : got.rels.shape[1]] = got.rels
        out_rels.append(rels)
    if not out_q:
        return ManyPaths(
            np.empty(0, I64),
            np.empty((0, max_h + 1), I64),
            np.empty((0, max_h), I64),
            np.zeros(n_q + 1, I64),
            hops,
            truncated,
        )
    query = np.concatenate(out_q)
    nodes, rels = np.concatenate(out_nodes), np.concatenate(out_rels)
    if len(out_q) > 1:  # stable: each query's rows came from one place, in order
        order = np.argsort(query, kind="stable")
        query, nodes, rels = query[order], nodes[order], rels[order]
    offsets = np.searchsorted(query, np.arange(n_q + 1, dtype=I64))
    return ManyPaths(query, nodes, rels, offsets, hops, truncated)


def _pad(nodes: np.ndarray, width: int) -> np.ndarray:
    if nodes.shape[1] == width:
        return nodes
    out = np.full((len(nodes), width), -1, dtype=I64)
    out[:, : nodes.shape[1]] = nodes
    return out


def render(kg: KG, paths: Paths) -> list[str]:
    """``e0 -> r1 -> e1 -> r2 -> e2`` per path; a backwards step shows as ``~r``."""
    names = kg.entity_names
    rel_names: dict[int, str] = {}
    out = []
    for nodes, rels in zip(paths.nodes.tolist(), paths.rels.tolist(), strict=True):
        parts = [names[nodes[0]]]
        for code, e in zip(rels, nodes[1:], strict=True):
            if code < 0:  # ManyPaths padding
                break
            r = rel_names.get(code)
            if r is None:
                r = rel_names[code] = kg.relation_name(code)
            parts += (r, names[e])
        out.append(" -> ".join(parts))
    return out


# --------------------------------------------------------------------------- relation sequences


class _Seqs:
    """Relation sequences as a trie of ids: id -> (code, link id); id 0 is the empty sequence.

    `link` is the sequence the code was added to (prepended in shortest_relation_paths,
    appended in relation_paths); `tuples` spells ids out accordingly.
    """

    def __init__(self, n_codes: int) -> None:
        self.n_codes = n_codes
        self.code: list[np.ndarray] = [np.array([-1], dtype=I64)]
        self.link: list[np.ndarray] = [np.array([0], dtype=I64)]
        self.size = 1

    def add(self, link: np.ndarray, code: np.ndarray) -> np.ndarray:
        """Ids of (link, code) sequences, one per input row; equal inputs get equal ids."""
        uniq, inv = unique_inverse(link * self.n_codes + code)
        self.link.append(uniq // self.n_codes)
        self.code.append(uniq % self.n_codes)
        ids = np.arange(self.size, self.size + len(uniq), dtype=I64)
        self.size += len(uniq)
        return ids[inv]

    def tuples(self, ids: Iterable[int], prepend: bool) -> list[tuple[int, ...]]:
        code = np.concatenate(self.code).tolist()
        link = np.concatenate(self.link).tolist()
        out = []
        for i in ids:
            seq = []
            while i:
                seq.append(code[i])
                i = link[i]
            out.append(tuple(seq) if prepend else tuple(reversed(seq)))
        return out


def _named(kg: KG, seqs: Iterable[tuple[int, ...]]) -> list[tuple[str, ...]]:
    """Distinct code sequences as relation names, in sequence order (see module doc)."""
    names: dict[int, str] = {}
    out = []
    for s in sorted(set(seqs), key=lambda t: (len(t), t)):
        for c in s:
            if c not in names:
                names[c] = kg.relation_name(c)
        out.append(tuple(names[c] for c in s))
    return out


def shortest_relation_paths(
    kg: KG,
    src_ids: Iterable[int],
    dst_ids: Iterable[int],
    max_hops: int = 3,
    *,
    undirected: bool = True,
    max_visits: int = 2_000_000,
) -> list[tuple[str, ...]]:
    """RoG's planning targets: the relation sequences of all shortest paths from any question
    entity to any answer entity.

    Each (source, answer) pair contributes its own shortest paths (up to `max_hops` steps);
    the result is the distinct sequences in sequence order (module doc). With `undirected` an
    edge may be walked backwards and then shows as ``~r`` (the reference walks an undirected
    graph and cannot tell). A source equal to an answer adds nothing.

    Per source: a level-synchronous BFS over entity sets (distances), stopped when every
    answer is reached, then a walk back from the answers along edges that go down one level,
    carrying distinct (entity, relation-sequence) pairs, so the work is bounded by distinct
    sequences rather than by the (possibly exponential) number of node paths. The cap: a BFS
    level that would scan more than `max_visits` edges is not expanded (answers further away
    count as unreachable; the paths returned are still shortest for the pairs they join),
    and the walk back keeps at most `max_visits` (entity, sequence) pairs per level (the
    first ones in (entity, sequence-id) order).
    """
    srcs = _as_ids(kg, src_ids)
    dsts = _as_ids(kg, dst_ids)
    if max_hops < 1 or not len(srcs) or not len(dsts):
        return []
    n_rel = kg.num_relations
    dist = np.full(len(kg), -1, dtype=np.int32)  # (n_entities,) BFS level, -1 unseen
    is_dst = np.zeros(len(kg), dtype=bool)
    is_dst[dsts] = True
    seqs = _Seqs(2 * n_rel)
    found: list[int] = []
    for s in srcs.tolist():
        touched = [np.array([s], dtype=I64)]
        dist[s] = 0
        frontier = touched[0]
        left = len(dsts) - int(is_dst[s])
        for d in range(1, max_hops + 1):
            if not left or _degree(kg, frontier, undirected) > max_visits:
                break
            _, nbr, _ = _all_edges(kg, frontier, undirected)
            frontier = unique(nbr[dist[nbr] < 0])
            if not len(frontier):
                break
            dist[frontier] = d
            touched.append(frontier)
            left -= int(is_dst[frontier].sum())
        reached = dsts[dist[dsts] > 0]
        if len(reached):
            found.extend(_walk_back(kg, dist, reached, seqs, undirected, max_visits))
        for t in touched:
            dist[t] = -1
    return _named(kg, seqs.tuples(set(found), prepend=True))


def _walk_back(
    kg: KG, dist: np.ndarray, targets: np.ndarray, seqs: _Seqs, undirected: bool, cap: int
) -> list[int]:
    """Sequence ids of the shortest paths source -> each target, built back from the targets.

    A state is (entity v at level d, sequence from v to a target). Its predecessors are the
    entities u at level d-1 with an edge u -r-> v (code r, from v's reverse adjacency) or,
    undirected, v -r-> u (walked backwards from u: code r + n_rel, from v's forward adjacency).
    """
    n_rel = kg.num_relations
    n = len(kg)
    tdist = dist[targets]
    node = np.empty(0, dtype=I64)
    seq = np.empty(0, dtype=I64)
    for d in range(int(tdist.max()), 0, -1):
        new = targets[tdist == d]  # answers at this level start with the empty sequence
        node = np.concatenate([node, new])
        seq = np.concatenate([seq, np.zeros(len(new), dtype=I64)])
        key = unique(seq * n + node)[:cap]  # distinct (sequence, entity) states
        seq, node = key // n, key % n
        parts = [(kg.rev, 0)] + ([(kg.fwd, n_rel)] if undirected else [])
        rows, us, codes = [], [], []
        for adj, off in parts:
            lo = adj.indptr[node]
            row, idx = _ragged(lo, adj.indptr[node + 1] - lo)
            u = adj.nbr[idx].astype(I64)
            ok = dist[u] == d - 1
            rows.append(row[ok])
            us.append(u[ok])
            codes.append(adj.rel[idx[ok]].astype(I64) + off)
        row = np.concatenate(rows)
        node = np.concatenate(us)
        seq = seqs.add(seq[row], np.concatenate(codes))
    return unique(seq).tolist()


def relation_paths(
    kg: KG,
    start_ids: Iterable[int],
    hops: int = 2,
    *,
    include_inverse: bool = True,
    max_paths: int = 10_000,
    max_states: int = 2_000_000,
) -> list[tuple[str, ...]]:
    """The distinct relation sequences of length 1..hops that exist from the start entities.

    In sequence order (module doc), the first `max_paths`. With `include_inverse`, incoming edges
    count too (as ``~r``). Each hop expands distinct (entity, sequence) states in one ragged
    gather; more than `max_states` states at a hop keeps the first ones in (sequence id,
    entity) order, and a hop whose edge scan exceeds `max_states` is not taken.
    """
    starts = _as_ids(kg, start_ids)
    if hops < 1 or not len(starts):
        return []
    n = len(kg)
    seqs = _Seqs(2 * kg.num_relations)
    node, seq = starts, np.zeros(len(starts), dtype=I64)
    found: list[np.ndarray] = []
    for h in range(hops):
        if _degree(kg, node, include_inverse) > max_states:
            break
        row, nbr, code = _all_edges(kg, node, include_inverse)
        if not len(row):
            break
        if h == hops - 1:  # the last hop needs only the new sequences, not where they end
            pair = unique(seq[row] * seqs.n_codes + code)
            new = seqs.add(pair // seqs.n_codes, pair % seqs.n_codes)
            found.append(new)
            break
        new = seqs.add(seq[row], code)
        found.append(unique(new))
        key = unique(new * n + nbr)[:max_states]
        seq, node = key // n, key % n
    # Ids were handed out level by level in (link, code) order, so ascending ids are already
    # in sequence order (shortest first, then by codes): cap before spelling anything out.
    ids = unique(np.concatenate(found))[:max_paths].tolist() if found else []
    return _named(kg, seqs.tuples(ids, prepend=False))

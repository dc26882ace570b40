"""Knowledge-graph path retrieval: ragtune.kg vs python-igraph, networkx and RoG's own way.

    python benchmarks/kg_paths.py            # 2M triples, 200k entities, 1,000 relations
    python benchmarks/kg_paths.py --quick    # 200k triples, 20k entities, 200 relations

The graph is random and seeded: subjects and objects drawn with power-law weights
(p ~ 1/(rank+10)^0.9, largest degree ~7.5k at the full size), relations Zipf-like, no self
loops and at most one triple per unordered entity pair (so the reference's undirected simple
graph loses nothing, see below). It is written to a TSV in a temp dir; ragtune's load time is
TSV -> finished store on disk, its open time is `KG.open` (memory-mapped).

A query is a start entity and a 2-relation plan taken from a path that exists (start uniform
over entities with an outgoing edge, then a random outgoing edge twice), so no answer set is
empty. Every implementation returns the paths, and the end-entity sets of all of them are
asserted identical for every query:

  ragtune follow        one `kg.follow` call per query
  ragtune follow_many   all queries in one call (and in batches of 64)
  python-igraph         a prebuilt global directed graph; plan following in Python over its
                        incidence lists (`get_inclist`) and a per-edge relation list
  networkx global       one prebuilt MultiDiGraph (edge key = relation); plan following over
                        `G.adj`
  RoG reference         what RoG does per question: build an undirected `nx.Graph` from the
                        question's subgraph (here: every triple touching the start entity or
                        one of its neighbours, its 2-hop neighbourhood, extracted untimed) and
                        run a BFS that follows the plan; timed: graph build + BFS. Only
                        --reference-queries queries (it is slow).

The reference walks edges in both directions, so it answers a different question than the
directed plan. Its answers are compared with ragtune's answers to the same undirected question:
the union over the 4 direction choices (r1|~r1, r2|~r2), timed as its own rows. Build times of
the peers are from in-memory id arrays (not from the TSV), so they are not a parse comparison.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections import deque
from itertools import product
from pathlib import Path

import numpy as np


def synth(n_triples: int, n_ent: int, n_rel: int, seed: int):
    """(s, r, o) int arrays: power-law entities, Zipf-like relations, one triple per pair."""
    rng = np.random.default_rng(seed)
    w = 1.0 / (np.arange(n_ent) + 10.0) ** 0.9
    p = w / w.sum()
    perm = rng.permutation(n_ent)  # hubs get random ids
    m = int(n_triples * 1.15) + 1000
    s = perm[rng.choice(n_ent, m, p=p)]
    o = perm[rng.choice(n_ent, m, p=p)]
    wr = 1.0 / (np.arange(n_rel) + 5.0)
    r = rng.choice(n_rel, m, p=wr / wr.sum())
    ok = s != o
    s, r, o = s[ok], r[ok], o[ok]
    lo, hi = np.minimum(s, o), np.maximum(s, o)
    _, first = np.unique(lo * n_ent + hi, return_index=True)  # first triple per pair
    first = np.sort(first)[:n_triples]
    return s[first], r[first], o[first]


def sample_queries(kg, k: int, seed: int) -> list[tuple[int, list[str]]]:
    """(start id, [r1, r2]) from existing forward paths."""
    rng = np.random.default_rng(seed)
    fwd = kg.fwd
    deg = np.diff(fwd.indptr)
    has = np.flatnonzero(deg)
    out: list[tuple[int, list[str]]] = []
    while len(out) < k:
        u = int(rng.choice(has))
        e1 = int(fwd.indptr[u] + rng.integers(deg[u]))
        v = int(fwd.nbr[e1])
        if not deg[v]:
            continue
        e2 = int(fwd.indptr[v] + rng.integers(deg[v]))
        out.append((u, [kg.relation_names[fwd.rel[e1]], kg.relation_names[fwd.rel[e2]]]))
    return out


# ------------------------------------------------------------------ RoG's reference, per question


def rog_build_graph(triples):
    """RoG (utils/graph_utils.py build_graph): an undirected simple graph, relation on edges."""
    import networkx as nx

    g = nx.Graph()
    for h, r, t in triples:
        g.add_edge(h, t, relation=r.strip())
    return g


def rog_bfs_with_rule(graph, start, rule):
    """RoG's bfs_with_rule: BFS keeping every path whose relations spell `rule`."""
    paths = []
    queue = deque([(start, [])])
    while queue:
        node, path = queue.popleft()
        if len(path) == len(rule):
            paths.append(path)
        if len(path) < len(rule):
            if node not in graph:
                continue
            for nb in graph.neighbors(node):
                rel = graph[node][nb]["relation"]
                if rel != rule[len(path)]:
                    continue
                queue.append((nb, path + [(node, rel, nb)]))
    return paths


def subgraph(kg, u: int) -> list[tuple[str, str, str]]:
    """Every triple touching u or a neighbour of u (either direction), as names."""
    f, r = kg.fwd, kg.rev
    nodes = np.unique(
        np.concatenate(
            [[u], f.nbr[f.indptr[u] : f.indptr[u + 1]], r.nbr[r.indptr[u] : r.indptr[u + 1]]]
        )
    )
    src, rel, dst = [], [], []
    for adj, forward in ((f, True), (r, False)):
        lo, hi = adj.indptr[nodes], adj.indptr[nodes + 1]
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
        own = np.repeat(nodes, hi - lo)
        a, b = (own, adj.nbr[idx]) if forward else (adj.nbr[idx], own)
        src.append(a)
        dst.append(b)
        rel.append(adj.rel[idx])
    key = np.unique(
        np.stack([np.concatenate(src), np.concatenate(rel), np.concatenate(dst)], 1), axis=0
    )
    en, rn = kg.entity_names, kg.relation_names
    return [(en[a], rn[b], en[c]) for a, b, c in key.tolist()]


# ------------------------------------------------------------------ peers on a global graph


def igraph_setup(kg, s, r, o):
    import igraph

    g = igraph.Graph(n=len(kg), edges=np.column_stack([s, o]).tolist(), directed=True)
    g.es["relation"] = r.tolist()
    inc = g.get_inclist(mode="out")
    erel = g.es["relation"]
    etgt = [t for _, t in g.get_edgelist()]
    return g, inc, erel, etgt


def igraph_follow(inc, erel, etgt, start, plan):
    paths = [[start]]
    for rel in plan:
        paths = [p + [etgt[e]] for p in paths for e in inc[p[-1]] if erel[e] == rel]
    return paths


def nx_setup(s, r, o, n):
    import networkx as nx

    g = nx.MultiDiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zip(s.tolist(), o.tolist(), r.tolist(), strict=True))  # key = relation
    return g


def nx_follow(g, start, plan):
    adj = g.adj
    paths = [[start]]
    for rel in plan:
        paths = [p + [v] for p in paths for v, keys in adj[p[-1]].items() if rel in keys]
    return paths


def run_igraph(kg, starts, plans) -> tuple[float, float, list[set[int]]]:
    """(build seconds, queries/s, answer sets)."""
    gc.collect()
    t = time.perf_counter()
    _, inc, erel, etgt = igraph_setup(kg, *_store_edges(kg))
    build_s = time.perf_counter() - t
    qps, got = rate(
        lambda: [
            igraph_follow(inc, erel, etgt, int(u), p) for u, p in zip(starts, plans, strict=True)
        ],
        len(plans),
    )
    return build_s, qps, [{p[-1] for p in x} for x in got]


def run_networkx(kg, starts, plans) -> tuple[float, float, list[set[int]]]:
    """(build seconds, queries/s, answer sets)."""
    gc.collect()
    t = time.perf_counter()
    g = nx_setup(*_store_edges(kg), len(kg))
    build_s = time.perf_counter() - t
    qps, got = rate(
        lambda: [nx_follow(g, int(u), p) for u, p in zip(starts, plans, strict=True)], len(plans)
    )
    return build_s, qps, [{p[-1] for p in x} for x in got]


def rate(fn, n_queries: int) -> tuple[float, object]:
    gc.collect()
    t = time.perf_counter()
    out = fn()
    return n_queries / (time.perf_counter() - t), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--triples", type=int, default=2_000_000)
    ap.add_argument("--entities", type=int, default=200_000)
    ap.add_argument("--relations", type=int, default=1_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--reference-queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="200k triples, 20k entities, 200 rel.")
    ap.add_argument("--no-networkx-global", action="store_true", help="skip the 2M-edge nx graph")
    args = ap.parse_args()
    if args.quick:
        args.triples, args.entities, args.relations = 200_000, 20_000, 200
        args.queries, args.reference_queries = 2_000, 50

    from rich.console import Console
    from rich.table import Table

    from ragtune.kg import KG, follow_many

    con = Console(width=150)
    load0 = os.getloadavg()[0]
    s, r, o = synth(args.triples, args.entities, args.relations, args.seed)
    ent = [f"ent_{i}" for i in range(args.entities)]
    rel = [f"rel_{i}" for i in range(args.relations)]
    notes = []
    with tempfile.TemporaryDirectory() as d:
        tsv = Path(d) / "kg.tsv"
        with open(tsv, "w", encoding="utf-8") as f:
            f.writelines(
                f"{ent[a]}\t{rel[b]}\t{ent[c]}\n"
                for a, b, c in zip(s.tolist(), r.tolist(), o.tolist(), strict=True)
            )
        mb = tsv.stat().st_size / 1e6
        t = time.perf_counter()
        KG.from_files([tsv], Path(d) / "kg")
        load_s = time.perf_counter() - t
        t = time.perf_counter()
        kg = KG.open(Path(d) / "kg")
        open_s = time.perf_counter() - t
        queries = sample_queries(kg, args.queries, args.seed + 1)
        starts = np.array([u for u, _ in queries], dtype=np.int64)
        plans = [p for _, p in queries]
        big = 10**9  # no cap: every implementation lists every path
        kg.follow([int(starts[0])], plans[0])  # warm up (first touch of the mapped pages)

        rows = []  # (task, implementation, q/s, baseline q/s or None, build note)
        qps, ours = rate(
            lambda: [kg.follow([int(u)], p, max_paths=big) for u, p in queries], len(queries)
        )
        assert not any(x.truncated for x in ours)
        answers = [set(x.ends.tolist()) for x in ours]
        base = qps
        rows.append(
            (
                "directed plan",
                "ragtune follow (one query per call)",
                qps,
                base,
                f"load {load_s:.1f}s from {mb:.0f} MB TSV, open {open_s * 1e3:.0f} ms",
            )
        )
        qps, many = rate(lambda: follow_many(kg, starts, plans, max_paths=big), len(queries))
        assert [set(many.ends(i).tolist()) for i in range(len(queries))] == answers
        rows.append(("directed plan", "ragtune follow_many (all in one call)", qps, base, ""))

        def batches():
            return [
                follow_many(kg, starts[i : i + 64], plans[i : i + 64], max_paths=big)
                for i in range(0, len(queries), 64)
            ]

        qps, got = rate(batches, len(queries))
        flat = [set(b.ends(i).tolist()) for b in got for i in range(len(b.hops))]
        assert flat == answers
        rows.append(("directed plan", "ragtune follow_many (batches of 64)", qps, base, ""))

        rid = {n: i for i, n in enumerate(kg.relation_names)}
        id_plans = [[rid[x] for x in p] for p in plans]
        build_s, qps, ends = run_igraph(kg, starts, id_plans)
        assert ends == answers
        rows.append(
            (
                "directed plan",
                "python-igraph, global graph, incidence lists",
                qps,
                base,
                f"build {build_s:.1f}s (graph + inclist)",
            )
        )
        if not args.no_networkx_global:
            build_s, qps, ends = run_networkx(kg, starts, id_plans)
            assert ends == answers
            rows.append(
                (
                    "directed plan",
                    "networkx, global MultiDiGraph",
                    qps,
                    base,
                    f"build {build_s:.1f}s",
                )
            )

        # The reference task: an undirected walk of the plan, per question.
        k = min(args.reference_queries, len(queries))
        ref_q = queries[:k]
        subs = [subgraph(kg, u) for u, _ in ref_q]
        sizes = [len(x) for x in subs]
        both = [
            [list(c) for c in product((p[0], "~" + p[0]), (p[1], "~" + p[1]))] for _, p in ref_q
        ]

        def ragtune_undirected_single():
            return [
                set().union(*(kg.follow([u], c, max_paths=big).ends.tolist() for c in combos))
                for (u, _), combos in zip(ref_q, both, strict=True)
            ]

        qps_u, und = rate(ragtune_undirected_single, k)
        rows.append(
            ("undirected walk (reference's task)", "ragtune follow x4 directions", qps_u, qps_u, "")
        )
        flat_starts = np.repeat(np.array([u for u, _ in ref_q], dtype=np.int64), 4)
        flat_plans = [c for combos in both for c in combos]

        def ragtune_undirected_many():
            m = follow_many(kg, flat_starts, flat_plans, max_paths=big)
            return [
                set(m.nodes[m.offsets[4 * i] : m.offsets[4 * i + 4], 2].tolist()) for i in range(k)
            ]

        qps, und_many = rate(ragtune_undirected_many, k)
        assert und_many == und
        rows.append(
            (
                "undirected walk (reference's task)",
                "ragtune follow_many x4 directions (one call)",
                qps,
                qps_u,
                "",
            )
        )

        def reference():
            out = []
            for (u, p), triples in zip(ref_q, subs, strict=True):
                graph = rog_build_graph(triples)
                out.append(rog_bfs_with_rule(graph, kg.entity_names[u], p))
            return out

        qps, ref = rate(reference, k)
        ref_ends = [{kg.entity_id(path[-1][2]) for path in x} for x in ref]
        assert ref_ends == und, "reference and ragtune (undirected) answers differ"
        assert all(answers[i] <= ref_ends[i] for i in range(k))
        rows.append(
            (
                "undirected walk (reference's task)",
                "RoG reference: nx.Graph per question + BFS",
                qps,
                qps_u,
                f"subgraphs of {np.median(sizes):,.0f} triples (median)",
            )
        )
        notes.append(
            f"reference answers == ragtune's undirected answers for all {k} queries; the directed "
            f"plan's answers are a subset of them ({sum(answers[i] != ref_ends[i] for i in range(k))} of {k} differ)"
        )

    load1 = os.getloadavg()[0]
    table = Table(
        title=f"{kg.num_edges:,} edges, {len(kg):,} entities, {kg.num_relations:,} relations; {len(queries):,} queries ({k} for the reference)"
    )
    for c in ("task", "implementation", "queries/s", "vs ragtune follow", "notes"):
        table.add_column(c)
    for task, impl, q, b, note in rows:
        table.add_row(task, impl, f"{q:,.0f}", f"{q / b:,.4g}x", note)
    con.print(table)
    by = {impl: q for _, impl, q, _, _ in rows}
    single, batched = (
        by["ragtune follow (one query per call)"],
        by["ragtune follow_many (all in one call)"],
    )
    ig = by["python-igraph, global graph, incidence lists"]
    con.print(
        f"ragtune vs igraph: follow {single / ig:.1f}x, follow_many {batched / ig:.1f}x as many queries/s"
    )
    ref = by["RoG reference: nx.Graph per question + BFS"]
    u1, u4 = by["ragtune follow x4 directions"], by["ragtune follow_many x4 directions (one call)"]
    con.print(
        f"ragtune vs the RoG reference on its task: follow {u1 / ref:,.0f}x, follow_many {u4 / ref:,.0f}x as many queries/s"
    )
    mean_paths = np.mean([x.count for x in ours])
    con.print(
        f"answers identical across implementations for every query; {mean_paths:.1f} paths per directed query on average"
    )
    for n in notes:
        con.print(n)
    con.print(
        f"load average (1 min) at start {load0:.2f}, at end {load1:.2f} ({os.cpu_count()} CPUs)"
    )


def _store_edges(kg):
    """(s, r, o) id arrays of the store's edges (for building the peers' graphs)."""
    f = kg.fwd
    s = np.repeat(np.arange(len(kg), dtype=np.int64), np.diff(f.indptr))
    return s, f.rel.astype(np.int64), f.nbr.astype(np.int64)


if __name__ == "__main__":
    main()

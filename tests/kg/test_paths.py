"""Path search against hand-built graphs and a brute-force Python reference on random ones."""

from collections import defaultdict

import numpy as np
import pytest

from ragtune.errors import ConfigError, DataError
from ragtune.kg import KG, follow, follow_many, relation_paths, shortest_relation_paths


def random_kg(seed, n=40, n_rel=4, n_triples=220, hub=True):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, n, n_triples)
    if hub:  # one busy entity so caps and the capped search get exercised
        s[: n_triples // 4] = 0
    o = rng.integers(0, n, n_triples)
    r = rng.integers(0, n_rel, n_triples)
    triples = [(f"e{a:02d}", f"r{b}", f"e{c:02d}") for a, b, c in zip(s, r, o, strict=True)]
    return KG.build(triples), sorted(set(triples))


def adjacency(kg, triples):
    """(entity id, directed code) -> sorted neighbour ids, the slow obvious way."""
    adj = defaultdict(set)
    for s, r, o in triples:
        si, oi, ri = kg.entity_id(s), kg.entity_id(o), kg.relation_id(r)
        adj[si, ri].add(oi)
        adj[oi, ri + kg.num_relations].add(si)
    return {k: sorted(v) for k, v in adj.items()}


def brute_follow(adj, starts, codes):
    paths = [[s] for s in sorted(set(starts))]
    for c in codes:
        paths = [p + [n] for p in paths for n in adj.get((p[-1], c), [])]
    return paths


def test_follow_hand_built():
    kg = KG.build(
        [
            ("Heat", "directed_by", "Michael Mann"),
            ("Collateral", "directed_by", "Michael Mann"),
            ("Collateral", "release_year", "2004"),
            ("Heat", "release_year", "1995"),
            ("Ronin", "directed_by", "John Frankenheimer"),
        ]
    )
    got = kg.follow(kg.ids(["Michael Mann"]), ["~directed_by", "release_year"])
    assert kg.render(got) == [
        "Michael Mann -> ~directed_by -> Collateral -> release_year -> 2004",
        "Michael Mann -> ~directed_by -> Heat -> release_year -> 1995",
    ]
    assert [kg.entity_names[i] for i in got.ends] == ["1995", "2004"]
    assert got.nodes.shape == (2, 3) and got.rels.shape == (2, 2) and not got.truncated
    assert got.rels[0].tolist() == [kg.num_relations + kg.relation_id("directed_by"), 1]
    assert kg.follow(kg.ids(["Heat"]), ["~directed_by"]).count == 0
    assert kg.follow([], ["directed_by"]).count == 0
    zero = kg.follow(kg.ids(["Heat", "Ronin"]), [])
    assert zero.nodes.tolist() == [[kg.entity_id("Heat")], [kg.entity_id("Ronin")]]
    with pytest.raises(DataError, match="unknown relation"):
        kg.follow([0], ["directed"])
    with pytest.raises(ConfigError, match="list of relation names"):
        kg.follow([0], "directed_by")
    with pytest.raises(DataError, match="None"):
        kg.follow([kg.find_entity("nobody")], ["directed_by"])
    with pytest.raises(DataError, match="out of range"):
        kg.follow([99], ["directed_by"])


@pytest.mark.parametrize("seed", range(6))
def test_follow_matches_brute_force_with_caps(seed):
    kg, triples = random_kg(seed)
    adj = adjacency(kg, triples)
    rng = np.random.default_rng(100 + seed)
    for _ in range(25):
        hops = int(rng.integers(1, 4))
        codes = rng.integers(0, 2 * kg.num_relations, hops).tolist()
        plan = [kg.relation_name(c) for c in codes]
        starts = rng.integers(0, len(kg), int(rng.integers(1, 4))).tolist()
        want = brute_follow(adj, starts, codes)
        for cap in (1, 3, 17, 10_000):
            got = follow(kg, starts, plan, max_paths=cap)
            assert got.nodes.tolist() == want[:cap], (plan, starts, cap)
            assert got.truncated == (len(want) > cap)
            assert got.rels.tolist() == [codes] * min(cap, len(want))


def test_capped_search_skips_dead_ends():
    # 50 partial paths through hub "m", only the last one completes: a blind cut at the
    # cap would find nothing, the capped search finds it.
    t = [("s", "a", f"m{i:02d}") for i in range(50)] + [("m49", "b", "end")]
    kg = KG.build(t)
    got = kg.follow(kg.ids(["s"]), ["a", "b"], max_paths=5)
    assert kg.render(got) == ["s -> a -> m49 -> b -> end"] and not got.truncated


@pytest.mark.parametrize("seed", range(3))
def test_follow_many_equals_follow(seed):
    kg, _ = random_kg(seed)
    rng = np.random.default_rng(seed)
    starts, plans = [], []
    for _ in range(60):
        k = int(rng.integers(0, 3))
        starts.append(
            int(rng.integers(0, len(kg))) if k == 0 else rng.integers(0, len(kg), k).tolist()
        )
        plans.append(
            [
                kg.relation_name(int(c))
                for c in rng.integers(0, 2 * kg.num_relations, int(rng.integers(1, 4)))
            ]
        )
    for cap in (2, 9, 10_000):
        many = follow_many(kg, starts, plans, max_paths=cap)
        assert many.offsets[-1] == len(many.nodes)
        for i in range(len(plans)):
            one = follow(kg, starts[i], plans[i], max_paths=cap)
            got = many.paths(i)
            assert got.nodes.tolist() == one.nodes.tolist(), (i, cap)
            assert got.rels.tolist() == one.rels.tolist()
            assert got.truncated == one.truncated
            np.testing.assert_array_equal(many.ends(i), one.ends)
    ints = follow_many(kg, np.array([1, 2]), [plans[0], plans[0]])
    assert ints.paths(1).nodes.tolist() == follow(kg, [2], plans[0]).nodes.tolist()
    assert follow_many(kg, [], []).nodes.shape == (0, 1)
    with pytest.raises(ConfigError, match="one each"):
        follow_many(kg, [1], [])


# ----------------------------------------------------------------------- shortest paths


def test_two_different_shortest_relation_paths():
    kg = KG.build(
        [
            ("q", "r1", "b"),
            ("b", "r2", "ans"),
            ("q", "r3", "c"),
            ("c", "r4", "ans"),
            ("q", "r5", "x"),  # a longer path is not a target
            ("x", "r6", "y"),
            ("y", "r7", "ans"),
            ("q", "r1", "b2"),  # a second node path with the same relations: listed once
            ("b2", "r2", "ans"),
        ]
    )
    got = kg.shortest_relation_paths(kg.ids(["q"]), kg.ids(["ans"]))
    assert got == [("r1", "r2"), ("r3", "r4")]


def test_shortest_path_needs_inverse_edge():
    kg = KG.build([("q", "r1", "b"), ("ans", "r2", "b"), ("q", "r9", "z")])
    q, ans = kg.ids(["q"]), kg.ids(["ans"])
    assert kg.shortest_relation_paths(q, ans) == [("r1", "~r2")]
    assert kg.shortest_relation_paths(q, ans, undirected=False) == []
    # the question entity may be the object: the first step is then backwards
    assert kg.shortest_relation_paths(ans, kg.ids(["z"])) == [("r2", "~r1", "r9")]
    assert kg.shortest_relation_paths(ans, kg.ids(["z"]), max_hops=2) == []


def test_each_pair_uses_its_own_shortest_length():
    kg = KG.build([("q", "r1", "a1"), ("q", "r1", "m"), ("m", "r2", "a2"), ("a1", "r3", "a2")])
    got = kg.shortest_relation_paths(kg.ids(["q"]), kg.ids(["a1", "a2", "q"]))
    assert got == [("r1",), ("r1", "r2"), ("r1", "r3")]


def brute_shortest(kg, triples, srcs, dsts, max_hops, undirected):
    """All shortest walks per pair by plain Python BFS + DFS over labelled edges."""
    out = defaultdict(list)
    for s, r, o in triples:
        si, oi = kg.entity_id(s), kg.entity_id(o)
        out[si].append((r, oi))
        if undirected:
            out[oi].append(("~" + r, si))
    seqs = set()
    for s in srcs:
        dist, frontier = {s: 0}, [s]
        for d in range(1, max_hops + 1):
            frontier = sorted({v for u in frontier for _, v in out[u] if v not in dist})
            for v in frontier:
                dist[v] = d

        for t in dsts:
            if t != s and t in dist:
                walk(out, dist, s, t, [], seqs)
    code = lambda r: kg.num_relations + kg.relation_id(r[1:]) if r[0] == "~" else kg.relation_id(r)  # noqa: E731
    return sorted(seqs, key=lambda x: (len(x), [code(r) for r in x]))


def walk(out, dist, u, t, path, seqs):
    if u == t:
        seqs.add(tuple(path))
        return
    for r, v in out[u]:
        if dist.get(v) == dist[u] + 1 and dist[v] <= dist[t]:
            walk(out, dist, v, t, path + [r], seqs)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("undirected", [True, False])
def test_shortest_matches_brute_force(seed, undirected):
    kg, triples = random_kg(seed, n=50, n_triples=90, hub=False)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        srcs = sorted(set(rng.integers(0, len(kg), 2).tolist()))
        dsts = sorted(set(rng.integers(0, len(kg), 3).tolist()))
        want = brute_shortest(kg, triples, srcs, dsts, 3, undirected)
        got = shortest_relation_paths(kg, srcs, dsts, 3, undirected=undirected)
        assert got == want, (srcs, dsts)


def test_shortest_visit_cap():
    kg = KG.build([("q", "r", f"m{i}") for i in range(30)] + [("m7", "r2", "ans")])
    q, ans = kg.ids(["q"]), kg.ids(["ans"])
    assert kg.shortest_relation_paths(q, ans) == [("r", "r2")]
    assert kg.shortest_relation_paths(q, ans, max_visits=10) == []


# ----------------------------------------------------------------------- relation paths


def test_relation_paths_hand_built():
    kg = KG.build([("a", "r1", "b"), ("b", "r2", "c"), ("d", "r3", "a"), ("a", "r1", "c")])
    a = kg.ids(["a"])
    assert kg.relation_paths(a, hops=1) == [("r1",), ("~r3",)]
    assert kg.relation_paths(a, hops=2) == [
        ("r1",),
        ("~r3",),
        ("r1", "r2"),
        ("r1", "~r1"),
        ("r1", "~r2"),
        ("~r3", "r3"),
    ]
    assert kg.relation_paths(a, hops=2, include_inverse=False) == [("r1",), ("r1", "r2")]
    assert kg.relation_paths(a, hops=2, max_paths=3) == [("r1",), ("~r3",), ("r1", "r2")]
    assert kg.relation_paths([], hops=2) == []


@pytest.mark.parametrize("seed", range(4))
def test_relation_paths_match_brute_force(seed):
    kg, triples = random_kg(seed, n=30, n_triples=80)
    adj = adjacency(kg, triples)
    rng = np.random.default_rng(seed)
    for inv in (True, False):
        codes = range(2 * kg.num_relations if inv else kg.num_relations)
        for _ in range(5):
            starts = rng.integers(0, len(kg), 2).tolist()
            want, walks = set(), [((), s) for s in set(starts)]
            for _h in range(3):
                walks = [
                    (seq + (c,), v) for seq, u in walks for c in codes for v in adj.get((u, c), [])
                ]
                want |= {seq for seq, _ in walks}
            want = [
                tuple(kg.relation_name(c) for c in t)
                for t in sorted(want, key=lambda t: (len(t), t))
            ]
            assert relation_paths(kg, starts, 3, include_inverse=inv) == want
            assert relation_paths(kg, starts, 3, include_inverse=inv, max_paths=7) == want[:7]

"""The knowledge-graph store: a directed multigraph in CSR arrays, saved as a plain directory.

    DIR/params.json      {"format": "ragtune-kg", "version": 1, "entities", "relations", "edges",
                          "duplicates_dropped", "created", "source"}
    DIR/entities.txt     one name per line (UTF-8, "\\n"-terminated); line i is entity id i
    DIR/relations.txt    the same for relation ids
    DIR/fwd_indptr.npy   (n_entities+1,) int64   edges of entity v are rows indptr[v]:indptr[v+1]
    DIR/fwd_rel.npy      (n_edges,) int32        relation id of each edge
    DIR/fwd_dst.npy      (n_edges,) int32        object of each edge
    DIR/fwd_key.npy      (n_edges,) int64        src * n_relations + rel: the (entity, relation)
                                                 lookup key, ascending (see below)
    DIR/rev_indptr.npy, rev_rel.npy, rev_src.npy, rev_key.npy
                         the same edges grouped by object: rev_src is the subject, and
                         rev_key = dst * n_relations + rel

Forward edges are sorted by (src, rel, dst) and reverse ones by (dst, rel, src), so the edges
of one (entity, relation) pair are one contiguous slice, sorted by neighbour id. The key arrays
make that slice two `np.searchsorted` calls for a whole frontier of entities at once, which is
what the vectorised path search (ragtune.kg.paths) is built on.

Names are sorted by code point, so ids do not depend on triple order and `entity_id` is a binary
search of `entity_names` (nothing to build when a store is opened). Names may not contain line
breaks (the loaders reject them with the file and line). No pickle anywhere: `KG.open`
memory-maps the arrays, so opening a store of millions of edges costs only reading the names.

A directed multigraph: parallel relations between the same pair are kept, identical triples
are stored once. A relation name starting with ``~`` means "that relation walked backwards"
(``~directed_by`` from a director reaches their films), so stored relation names may not
start with ``~``.

    kg = KG.from_files(["kb.txt"], out_dir="out/kg")      # or KG.build(triples), KG.open(dir)
    kg.follow(kg.ids(["Heat"]), ["directed_by", "~directed_by"]).ends
"""

from __future__ import annotations

import bisect
import gc
import itertools
import json
import time
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ragtune.errors import ConfigError, DataError
from ragtune.kg import paths as _paths
from ragtune.kg.paths import unique
from ragtune.store import read_params, recover_dir, staged_dir

if TYPE_CHECKING:  # pragma: no cover
    from ragtune.kg.paths import ManyPaths, Paths
    from ragtune.kg.triples import TripleReport

FORMAT = "ragtune-kg"
VERSION = 1
INVERSE = "~"
MAX_ID = 2**31 - 1  # ids are stored as int32
ARRAYS = ("indptr", "rel", "nbr", "key")
FILES = {
    "fwd": {"indptr": "fwd_indptr", "rel": "fwd_rel", "nbr": "fwd_dst", "key": "fwd_key"},
    "rev": {"indptr": "rev_indptr", "rel": "rev_rel", "nbr": "rev_src", "key": "rev_key"},
}
SKIPPED_KEPT = 100  # skipped lines recorded in params.json (the count is always exact)


def inverse(rel_name: str) -> str:
    """``r`` -> ``~r`` and ``~r`` -> ``r``."""
    return rel_name[1:] if rel_name.startswith(INVERSE) else INVERSE + rel_name


class Adjacency(NamedTuple):
    """One direction's CSR. For "fwd" `nbr` is the object, for "rev" the subject."""

    indptr: np.ndarray  # (n_entities+1,) int64
    rel: np.ndarray  # (n_edges,) int32
    nbr: np.ndarray  # (n_edges,) int32
    key: np.ndarray  # (n_edges,) int64 = entity * n_relations + rel, ascending


def _check_names(names: Iterable[str], what: str) -> None:
    for n in names:
        if not isinstance(n, str):
            raise DataError(f"{what} name {n!r} is not a string; convert names with str()")
        if not n or "\n" in n or "\r" in n or n != n.strip():
            raise DataError(
                f"{what} name {n!r} is empty, has surrounding whitespace or contains a line "
                "break; strip it and replace line breaks with spaces"
            )


def _sort_ids(first_seen: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """Names in code-point order, and old id (first appearance) -> new id (sorted)."""
    names = list(first_seen)
    order = sorted(range(len(names)), key=names.__getitem__)
    remap = np.empty(len(names), dtype=np.int64)
    remap[np.asarray(order, dtype=np.int64)] = np.arange(len(names), dtype=np.int64)
    return [names[i] for i in order], remap


def _csr(node: np.ndarray, rel: np.ndarray, nbr: np.ndarray, n: int, n_rel: int) -> Adjacency:
    """CSR of edges node -rel-> nbr sorted by (node, rel, nbr); inputs are distinct triples."""
    key = node * n_rel + rel  # (E,) int64
    if n_rel * n * max(n, 1) < 2**62:  # one int64 key orders (node, rel, nbr): one argsort
        order = np.argsort(key * n + nbr, kind="stable")
    else:
        order = np.lexsort((nbr, key))
    key = key[order]
    counts = np.bincount(node, minlength=n)  # (n,) edges per entity
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return Adjacency(indptr, rel[order].astype(np.int32), nbr[order].astype(np.int32), key)


class KG:
    """A knowledge graph: names, and forward and reverse CSR adjacency (see module doc)."""

    def __init__(
        self,
        params: dict[str, Any],
        entity_names: list[str],
        relation_names: list[str],
        fwd: Adjacency,
        rev: Adjacency,
        path: Path | None = None,
    ) -> None:
        self.params = params
        self.entity_names = entity_names
        self.relation_names = relation_names
        self.fwd = fwd
        self.rev = rev
        self.path = path
        self.report: TripleReport | None = None  # set by from_files
        self._casefold: dict[str, int] | None = None
        self._codes: dict[str, int] = {}  # plan step name -> directed relation code (paths)
        self._matcher: Any = None  # ragtune.kg.entities caches its name matcher here

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        triples: Iterable[tuple[str, str, str]],
        out_dir: str | Path | None = None,
        *,
        source: dict[str, Any] | None = None,
    ) -> KG:
        """A KG from (subject, relation, object) name triples; saved to `out_dir` if given."""
        ents: dict[str, int] = {}
        rels: dict[str, int] = {}
        # Ids in order of first appearance while streaming (only distinct names are kept in
        # memory); renumbered in name order below. array('q') holds 8 bytes per id.
        s_ids, r_ids, o_ids = array("q"), array("q"), array("q")
        it = iter(triples)
        gc_was_on = gc.isenabled()
        gc.disable()  # millions of short-lived tuples, no cycles: collections only cost time
        try:
            while batch := list(itertools.islice(it, 65_536)):
                try:
                    subj, rel, obj = zip(*batch, strict=True)
                except ValueError:
                    bad = next(t for t in batch if len(t) != 3)
                    raise DataError(
                        f"a triple must be (subject, relation, object), got {bad!r}"
                    ) from None
                s_ids.extend([ents.setdefault(x, len(ents)) for x in subj])
                r_ids.extend([rels.setdefault(x, len(rels)) for x in rel])
                o_ids.extend([ents.setdefault(x, len(ents)) for x in obj])
        finally:
            if gc_was_on:
                gc.enable()
        if not s_ids:
            raise DataError("no triples to build a KG from; check the input files")
        if len(ents) > MAX_ID or len(rels) > MAX_ID:
            raise DataError(f"more than {MAX_ID:,} entities or relations are not supported")
        _check_names(ents, "entity")
        _check_names(rels, "relation")
        entity_names, ent_map = _sort_ids(ents)
        relation_names, rel_map = _sort_ids(rels)
        del ents, rels
        bad = [r for r in relation_names if r.startswith(INVERSE)]
        if bad:
            raise DataError(
                f"relation {bad[0]!r} starts with {INVERSE!r}, which marks a relation walked "
                "backwards in path plans; rename it (e.g. drop the leading '~')"
            )
        n, n_rel = len(entity_names), len(relation_names)
        s = ent_map[np.frombuffer(s_ids, dtype=np.int64)]  # (T,) int64
        r = rel_map[np.frombuffer(r_ids, dtype=np.int64)]
        o = ent_map[np.frombuffer(o_ids, dtype=np.int64)]
        n_triples = len(s_ids)
        del s_ids, r_ids, o_ids
        # De-duplicate identical triples (parallel relations between a pair differ in r).
        if n_rel * n * n < 2**62:
            packed = unique((s * n_rel + r) * n + o)  # (E,) sorted by (s, r, o)
            s, rest = np.divmod(packed, n_rel * n)
            r, o = np.divmod(rest, n)
        else:
            order = np.lexsort((o, r, s))
            s, r, o = s[order], r[order], o[order]
            keep = np.ones(len(s), dtype=bool)
            keep[1:] = (s[1:] != s[:-1]) | (r[1:] != r[:-1]) | (o[1:] != o[:-1])
            s, r, o = s[keep], r[keep], o[keep]
        params: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "entities": n,
            "relations": n_rel,
            "edges": len(s),
            "duplicates_dropped": n_triples - len(s),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": source or {},
        }
        kg = cls(
            params,
            entity_names,
            relation_names,
            _csr(s, r, o, n, n_rel),
            _csr(o, r, s, n, n_rel),
        )
        if out_dir is not None:
            kg.save(out_dir)
            return cls.open(out_dir)
        return kg

    @classmethod
    def from_files(
        cls,
        paths: str | Path | Iterable[str | Path],
        out_dir: str | Path | None = None,
        *,
        format: str | None = None,
        strict: bool = True,
        on_bad=None,
    ) -> KG:
        """Load triple files (see ragtune.kg.triples) into a KG; `kg.report` says what was read."""
        from ragtune.kg.triples import TripleReport, detect_format, read_triples

        if isinstance(paths, str | Path):
            paths = [paths]
        paths = [Path(p) for p in paths]
        report = TripleReport()

        def record(b) -> None:
            report.skipped.append(b)
            if on_bad is not None:
                on_bad(b)

        def stream():
            for p in paths:
                if p.is_dir():
                    raise DataError("is a folder; give the triple files themselves", path=str(p))
                if not p.exists():
                    raise DataError("no such file; check the path", path=str(p))
                fmt = format or detect_format(p)
                report.formats[str(p)] = fmt
                k = 0
                for t in read_triples(p, fmt, strict=strict, on_bad=record):
                    k += 1
                    yield t
                report.files[str(p)] = k

        kg = cls.build(stream())
        src = report.to_dict()
        src["skipped_lines"] = len(report.skipped)
        src["skipped"] = src["skipped"][:SKIPPED_KEPT]
        kg.params["source"] = src
        if out_dir is not None:
            kg.save(out_dir)
            kg = cls.open(out_dir)
        kg.report = report
        return kg

    def save(self, out_dir: str | Path) -> Path:
        """Write the store to `out_dir` atomically (`ragtune.store.staged_dir`)."""
        out = Path(out_dir)
        with staged_dir(out, what="KG") as tmp:
            for what, names in (
                ("entities", self.entity_names),
                ("relations", self.relation_names),
            ):
                with open(tmp / f"{what}.txt", "w", encoding="utf-8", newline="\n") as f:
                    f.write("".join(n + "\n" for n in names))
            for side, adj in (("fwd", self.fwd), ("rev", self.rev)):
                for field, arr in zip(ARRAYS, adj, strict=True):
                    np.save(tmp / f"{FILES[side][field]}.npy", np.ascontiguousarray(arr))
            (tmp / "params.json").write_text(json.dumps(self.params, indent=2), encoding="utf-8")
        return out

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> KG:
        """Open a saved store; the arrays are memory-mapped read-only (nothing is copied)."""
        path = recover_dir(path)  # a save killed mid-swap may have moved the store aside
        params = read_params(path, FORMAT, VERSION, "KG", "`ragtune kg load FILES --out PATH`")
        names = {}
        for what in ("entities", "relations"):
            with open(path / f"{what}.txt", encoding="utf-8", newline="\n") as f:
                names[what] = f.read().split("\n")[:-1]
            if len(names[what]) != params[what]:
                raise ConfigError(
                    f"{path}/{what}.txt has {len(names[what]):,} names but params.json says "
                    f"{params[what]:,}; the store is damaged, rebuild it with `ragtune kg load`"
                )
        adj = {}
        for side in ("fwd", "rev"):
            arrs = []
            for field in ARRAYS:
                f = path / f"{FILES[side][field]}.npy"
                if not f.exists():
                    raise ConfigError(f"{f} is missing; rebuild the store with `ragtune kg load`")
                # A plain ndarray view of the memmap: same pages, no np.memmap subclass
                # overhead on every slice in the hot paths.
                arrs.append(np.load(f, mmap_mode="r", allow_pickle=False).view(np.ndarray))
            adj[side] = Adjacency(*arrs)
        return cls(params, names["entities"], names["relations"], adj["fwd"], adj["rev"], path=path)

    # -- names and ids ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entity_names)

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return (
            f"KG({len(self):,} entities, {self.num_relations:,} relations, "
            f"{self.num_edges:,} edges{where})"
        )

    @property
    def num_edges(self) -> int:
        return len(self.fwd.nbr)

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)

    @staticmethod
    def _find(names: list[str], name: str) -> int | None:
        i = bisect.bisect_left(names, name)
        return i if i < len(names) and names[i] == name else None

    def entity_id(self, name: str) -> int | None:
        """The id of an entity name (exact match), or None."""
        return self._find(self.entity_names, name)

    def relation_id(self, name: str) -> int | None:
        """The id of a stored relation name (no ``~``), or None."""
        return self._find(self.relation_names, name)

    def find_entity(self, name: str) -> int | None:
        """The id of `name`: an exact match first, then a case-insensitive one (casefold)."""
        name = name.strip()
        i = self.entity_id(name)
        if i is not None:
            return i
        if self._casefold is None:
            table: dict[str, int] = {}
            for j, n in enumerate(self.entity_names):
                table.setdefault(n.casefold(), j)  # the smallest id wins a case clash
            self._casefold = table
        return self._casefold.get(name.casefold())

    def ids(self, names: Iterable[str]) -> np.ndarray:
        """Entity ids (int64) of exact names; an unknown name raises DataError."""
        out = []
        for n in names:
            i = self.entity_id(n)
            if i is None:
                hint = self.find_entity(n)
                raise DataError(
                    f"unknown entity {n!r}"
                    + (f"; did you mean {self.entity_names[hint]!r}?" if hint is not None else "")
                    + " (names are matched exactly; kg.find_entity ignores case)"
                )
            out.append(i)
        return np.asarray(out, dtype=np.int64)

    def directed_relation(self, name: str) -> int:
        """The code search uses for a plan step: rel id, or rel id + n_relations for ``~rel``."""
        back = name.startswith(INVERSE)
        i = self.relation_id(name[1:] if back else name)
        if i is None:
            import difflib

            close = difflib.get_close_matches(name.lstrip(INVERSE), self.relation_names, n=3)
            raise DataError(
                f"unknown relation {name!r}; "
                + (f"did you mean {', '.join(map(repr, close))}? " if close else "")
                + f"the KG has {self.num_relations:,} relations (kg.relation_names); "
                f"prefix one with {INVERSE!r} to walk it backwards"
            )
        return i + self.num_relations if back else i

    def relation_name(self, code: int) -> str:
        """The name of a directed relation code (``~r`` for codes >= n_relations)."""
        n = self.num_relations
        return INVERSE + self.relation_names[code - n] if code >= n else self.relation_names[code]

    def neighbors(self, ent_id: int, rel_name: str | None = None) -> np.ndarray:
        """Entities one `rel_name` step from `ent_id` (``~r`` walks backwards), ascending.

        With no relation: every entity joined to it by an outgoing edge.
        """
        ent_id = int(ent_id)
        if not 0 <= ent_id < len(self):
            raise DataError(f"entity id {ent_id} is out of range (the KG has {len(self):,})")
        if rel_name is None:
            a, b = self.fwd.indptr[ent_id], self.fwd.indptr[ent_id + 1]
            return unique(self.fwd.nbr[a:b]).astype(np.int64)
        code = self.directed_relation(rel_name)
        n_rel = self.num_relations
        adj = self.rev if code >= n_rel else self.fwd
        key = ent_id * n_rel + code % n_rel
        a, b = np.searchsorted(adj.key, [key, key + 1])
        return adj.nbr[a:b].astype(np.int64)

    # -- search (ragtune.kg.paths) ------------------------------------------------------
    def follow(
        self, start_ids: Iterable[int], relations: Sequence[str], max_paths: int = 10_000
    ) -> Paths:
        """Every path from `start_ids` whose relations spell `relations` (see paths.follow)."""
        return _paths.follow(self, start_ids, relations, max_paths=max_paths)

    def follow_many(
        self, starts: Sequence[Any], plans: Sequence[Sequence[str]], max_paths: int = 10_000
    ) -> ManyPaths:
        """`follow` for many (start, plan) queries in one vectorised pass."""
        return _paths.follow_many(self, starts, plans, max_paths=max_paths)

    def shortest_relation_paths(
        self,
        src_ids: Iterable[int],
        dst_ids: Iterable[int],
        max_hops: int = 3,
        undirected: bool = True,
        max_visits: int = 2_000_000,
    ) -> list[tuple[str, ...]]:
        """Relation sequences of all shortest paths question -> answer (see paths)."""
        return _paths.shortest_relation_paths(
            self, src_ids, dst_ids, max_hops, undirected=undirected, max_visits=max_visits
        )

    def relation_paths(
        self,
        start_ids: Iterable[int],
        hops: int = 2,
        include_inverse: bool = True,
        max_paths: int = 10_000,
    ) -> list[tuple[str, ...]]:
        """Distinct relation sequences of length 1..hops from the start entities."""
        return _paths.relation_paths(
            self, start_ids, hops, include_inverse=include_inverse, max_paths=max_paths
        )

    def render(self, paths: Paths) -> list[str]:
        """``e0 -> r1 -> e1 -> r2 -> e2`` per path (a backwards step shows as ``~r``)."""
        return _paths.render(self, paths)

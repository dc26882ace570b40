"""Read knowledge-graph triples (subject, relation, object) from files.

Four formats, picked by extension (``.tsv``, ``.csv``, ``.jsonl``/``.ndjson``) or, for any other
extension (``.txt``, none), by looking at the first non-blank line:

    tsv    ``subject<TAB>relation<TAB>object``                  (PathQuestion's ``2H-kb.txt``)
    pipe   ``subject|relation|object``                          (MetaQA's ``kb.txt``)
    csv    three columns, quoted as the csv module does; an optional header
           ``subject,relation,object`` (or ``head,relation,tail`` / ``s,r,o``) is skipped
    jsonl  ``{"subject": .., "relation": .., "object": ..}`` per line; ``head/relation/tail``
           and ``s/r/o`` keys are accepted too

Blank lines are skipped. Each name has surrounding whitespace stripped and is otherwise kept
verbatim (case, underscores, punctuation). A malformed line raises `DataError` naming the file
and line and saying how to fix it; with ``strict=False`` it is skipped instead and recorded in
the `TripleReport`.

    triples, report = load_triples(["kb.txt"], strict=False)
    report.summary()   # "1 file, 134,741 triples, 0 skipped lines"
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragtune.errors import DataError

FORMATS = ("tsv", "csv", "pipe", "jsonl")
EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Key triples accepted in a JSON record, tried in this order.
JSON_KEYS = (("subject", "relation", "object"), ("head", "relation", "tail"), ("s", "r", "o"))
CSV_HEADERS = {tuple(k) for k in JSON_KEYS}
SEPARATORS = {"tsv": "\t", "pipe": "|"}

Triple = tuple[str, str, str]


@dataclass
class BadLine:
    """One line that was not read as a triple, and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class TripleReport:
    """What a `load_triples` call read: counts per file and every skipped line."""

    files: dict[str, int] = field(default_factory=dict)  # path -> triples read from it
    formats: dict[str, str] = field(default_factory=dict)  # path -> detected format
    skipped: list[BadLine] = field(default_factory=list)

    @property
    def triples(self) -> int:
        return sum(self.files.values())

    def summary(self) -> str:
        """One line, e.g. ``2 files, 1,211 triples, 1 skipped line``."""
        n = len(self.files)
        k = len(self.skipped)
        return (
            f"{n:,} file{'s' * (n != 1)}, {self.triples:,} triples, "
            f"{k:,} skipped line{'s' * (k != 1)}"
        )

    def to_dict(self) -> dict:
        return {
            "files": self.files,
            "formats": self.formats,
            "skipped": [{"path": b.path, "line": b.line, "reason": b.reason} for b in self.skipped],
        }


class _Bad(Exception):
    """A line-level problem; the caller turns it into a DataError or a BadLine."""


def detect_format(path: str | Path) -> str:
    """tsv | csv | pipe | jsonl: by extension, else by the first non-blank line."""
    path = Path(path)
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt:
        return fmt
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror}); check the path", path=str(path)) from None
    if not first:
        raise DataError("the file is empty; give a file with one triple per line", path=str(path))
    if first.lstrip().startswith("{"):
        return "jsonl"
    for fmt, sep in (("tsv", "\t"), ("pipe", "|"), ("csv", ",")):
        if sep in first:
            return fmt
    raise DataError(
        "cannot tell the triple format from the first line (no tab, '|' or ','); write one "
        "`subject<TAB>relation<TAB>object` per line or pass format= tsv|csv|pipe|jsonl",
        path=str(path),
        line=1,
    )


def _check(parts: Iterable[str], fmt: str) -> Triple:
    s, r, o = (p.strip() for p in parts)
    for what, name in (("subject", s), ("relation", r), ("object", o)):
        if not name:
            raise _Bad(f"empty {what}; every {fmt} line needs subject, relation and object")
        if "\n" in name or "\r" in name:
            raise _Bad(f"the {what} contains a line break; replace it with a space")
    return s, r, o


def _split_line(line: str, fmt: str) -> Triple:
    sep = SEPARATORS[fmt]
    parts = line.rstrip("\r\n").split(sep)
    if len(parts) != 3:
        shown = "TAB" if sep == "\t" else repr(sep)
        raise _Bad(
            f"expected 3 {shown}-separated fields, found {len(parts)}; "
            f"write `subject{sep}relation{sep}object`"
            + (" (a name may not contain '|')" if fmt == "pipe" and len(parts) > 3 else "")
        )
    return _check(parts, fmt)


def _json_line(line: str) -> Triple:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        raise _Bad(
            f"malformed JSON ({e.msg} at column {e.colno}); fix or remove the line"
        ) from None
    if not isinstance(rec, dict):
        raise _Bad('not a JSON object; write {"subject": .., "relation": .., "object": ..}')
    for keys in JSON_KEYS:
        if all(k in rec for k in keys):
            vals = [rec[k] for k in keys]
            if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in vals):
                raise _Bad(f"fields {', '.join(keys)} must be strings")
            return _check((str(v) for v in vals), "jsonl")
    raise _Bad(
        f"no subject/relation/object keys (found {', '.join(sorted(rec)) or 'none'}); use "
        "subject/relation/object, head/relation/tail or s/r/o"
    )


def read_triples(
    path: str | Path,
    format: str | None = None,
    *,
    strict: bool = True,
    on_bad: Callable[[BadLine], None] | None = None,
) -> Iterator[Triple]:
    """Yield the triples of one file; bad lines raise `DataError` (strict) or go to `on_bad`."""
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown triple format {fmt!r}; use one of {', '.join(FORMATS)}")

    def bad(lineno: int, reason: str) -> None:
        if strict:
            raise DataError(
                reason + " (or skip bad lines with strict=False)", path=str(path), line=lineno
            )
        if on_bad is not None:
            on_bad(BadLine(str(path), lineno, reason))

    try:
        f = open(path, encoding="utf-8", newline="")
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror}); check the path", path=str(path)) from None
    with f:
        try:
            if fmt == "csv":
                rows = csv.reader(f)
                for row in rows:
                    lineno = rows.line_num
                    if not row or all(not c.strip() for c in row):
                        continue
                    if lineno == 1 and tuple(c.strip().lower() for c in row) in CSV_HEADERS:
                        continue
                    if len(row) != 3:
                        bad(
                            lineno,
                            f"expected 3 comma-separated columns, found {len(row)}; "
                            "quote names that contain commas",
                        )
                        continue
                    try:
                        yield _check(row, fmt)
                    except _Bad as e:
                        bad(lineno, str(e))
                return
            if fmt in SEPARATORS:
                # The common case inline (millions of lines): three non-empty fields. With
                # newline="" a line can hold "\r" or "\n" only at its end, which strip()
                # removes. Anything else goes through _split_line for the exact reason.
                sep = SEPARATORS[fmt]
                for lineno, line in enumerate(f, 1):
                    parts = line.split(sep)
                    if len(parts) == 3:
                        a, b, c = parts[0].strip(), parts[1].strip(), parts[2].strip()
                        if a and b and c:
                            yield a, b, c
                            continue
                    if not line.strip():
                        continue
                    try:
                        yield _split_line(line, fmt)
                    except _Bad as e:
                        bad(lineno, str(e))
                return
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield _json_line(line)
                except _Bad as e:
                    bad(lineno, str(e))
        except UnicodeDecodeError as e:
            raise DataError(
                f"not UTF-8 (byte {e.start} of a read block); re-encode the file as UTF-8",
                path=str(path),
            ) from None
        except csv.Error as e:
            raise DataError(f"malformed CSV ({e}); check the quoting", path=str(path)) from None


def load_triples(
    paths: str | Path | Iterable[str | Path],
    format: str | None = None,
    *,
    strict: bool = True,
    on_bad: Callable[[BadLine], None] | None = None,
) -> tuple[list[Triple], TripleReport]:
    """All triples of `paths` (files, in order) and a report of counts and skipped lines."""
    if isinstance(paths, str | Path):
        paths = [paths]
    report = TripleReport()

    def record(b: BadLine) -> None:
        report.skipped.append(b)
        if on_bad is not None:
            on_bad(b)

    out: list[Triple] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            raise DataError("is a folder; give the triple files themselves", path=str(p))
        if not p.exists():
            raise DataError("no such file; check the path", path=str(p))
        fmt = format or detect_format(p)
        before = len(out)
        out.extend(read_triples(p, fmt, strict=strict, on_bad=record))
        report.files[str(p)] = len(out) - before
        report.formats[str(p)] = fmt
    return out, report

"""Turn files and folders into `Document`s: text, markdown, HTML, PDF, JSON and JSON Lines.

Bad input never stops a load: each problem (an empty, binary, non-UTF-8, oversized or corrupt
file, malformed JSON, a record without the text field, a missing path) becomes a `Skipped`
entry in the `LoadReport` and the rest of the corpus still loads. With ``strict=True`` the
first problem raises `DataError` instead (naming the file and, where known, the line).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.corpus.document import Document, stable_id
from ragtune.errors import DataError

TEXT_SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = ".txt .md .html .htm .pdf .json .jsonl"
SNIFF_BYTES = 8192

# Record fields that name a record (first present wins) and that hold "the" text of a record.
TITLE_FIELDS = ("api_name", "name", "title", "id")
TEXT_FIELDS = ("text", "content", "body", "paragraph_text")
LONG_VALUE = 200  # a field rendered longer than this is "long" (see _render_record)
JSON_LIST_KEYS = ("data", "records", "items")

# Skip reasons start with one of these; `Skipped.kind` and `LoadReport.summary` use the short kind.
_KINDS = (
    ("no such file", "missing"),
    ("empty", "empty"),
    ("binary file", "binary"),
    ("not UTF-8", "not UTF-8"),
    ("file is ", "too large"),
    ("malformed JSON", "malformed JSON"),
    ("corrupt PDF", "corrupt PDF"),
    ("encrypted PDF", "encrypted PDF"),
    ("no extractable text", "no text"),
    ("no text", "no text"),
    ("cannot read", "unreadable"),
)


@dataclass
class Skipped:
    """One file (or one record of a file) that was not loaded, and why."""

    path: str
    reason: str
    line: int | None = None

    @property
    def kind(self) -> str:
        """A short name for the kind of problem ("empty", "binary", "missing field", ...)."""
        if " has no field " in self.reason:
            return "missing field"
        if " not an object" in self.reason or self.reason.startswith("JSON holds"):
            return "not a record"
        for prefix, kind in _KINDS:
            if self.reason.startswith(prefix):
                return kind
        return "other"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class LoadReport:
    files_seen: int = 0
    files_loaded: int = 0
    documents: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def summary(self) -> str:
        """One line, e.g. ``12 files, 11 loaded, 40 documents, 1 skipped (1 empty)``."""
        line = (
            f"{_plural(self.files_seen, 'file')}, {self.files_loaded} loaded, "
            f"{_plural(self.documents, 'document')}, {len(self.skipped)} skipped"
        )
        if self.skipped:
            kinds = Counter(s.kind for s in self.skipped)
            ordered = sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
            line += " (" + ", ".join(f"{n} {kind}" for kind, n in ordered) + ")"
        return line


class _Skip(Exception):
    """Raised by a reader: the whole file is skipped with this reason."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


class _Loader:
    """Collects documents and skips for one `load_corpus` call."""

    def __init__(self, strict: bool, on_skip: Callable[[Skipped], None] | None):
        self.strict = strict
        self.on_skip = on_skip
        self.report = LoadReport()

    def skip(self, path: str, reason: str, line: int | None = None) -> None:
        if self.strict:
            raise DataError(reason, path=path, line=line)
        s = Skipped(path=path, reason=reason, line=line)
        self.report.skipped.append(s)
        if self.on_skip is not None:
            self.on_skip(s)


# --------------------------------------------------------------------------- walking


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(path: Path) -> Iterator[Path]:
    """`path` itself if it is not a folder, else the visible files under it, sorted."""
    if not path.is_dir():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        for name in sorted(files):
            if not _is_hidden(name):
                yield Path(root) / name


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The files named in `paths`, with folders walked recursively (sorted; hidden names skipped).

    Paths that do not exist are left out (`load_corpus` reports them); each file is given once.
    """
    seen: set[Path] = set()
    for p in _as_paths(paths):
        for f in _walk(p):
            if not f.is_file():
                continue
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                yield f


def _as_paths(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    if isinstance(paths, str | Path):
        paths = [paths]
    return [Path(p) for p in paths]


# --------------------------------------------------------------------------- the entry point


def load_corpus(
    paths: Iterable[str | Path],
    *,
    text_field: str | None = None,
    max_bytes: int = 50_000_000,
    strict: bool = False,
    on_skip: Callable[[Skipped], None] | None = None,
) -> tuple[list[Document], LoadReport]:
    """Load every supported file under `paths` into documents.

    `text_field` names the field (dotted path allowed, e.g. ``meta.body``) holding the text of
    JSON/JSONL records; without it a record is rendered as ``key: value`` lines. Problems are
    reported in the returned `LoadReport` (and passed to `on_skip`), or raised as `DataError`
    when `strict`. `iter_corpus` gives the same documents one file at a time.
    """
    report = LoadReport()
    docs = list(
        iter_corpus(
            paths,
            text_field=text_field,
            max_bytes=max_bytes,
            strict=strict,
            on_skip=on_skip,
            report=report,
        )
    )
    return docs, report


def iter_corpus(
    paths: Iterable[str | Path],
    *,
    text_field: str | None = None,
    max_bytes: int = 50_000_000,
    strict: bool = False,
    on_skip: Callable[[Skipped], None] | None = None,
    report: LoadReport | None = None,
) -> Iterator[Document]:
    """`load_corpus`'s documents, in the same order, read one file at a time: a corpus larger
    than memory streams through (one file, at most `max_bytes`, is held at once). `report`
    (a LoadReport) is filled in as files are read, and is complete when the iterator ends."""
    loader = _Loader(strict, on_skip)
    if report is not None:
        loader.report = report
    seen: set[Path] = set()
    for given in _as_paths(paths):
        if not given.exists():
            loader.report.files_seen += 1
            loader.skip(str(given), "no such file or directory")
            continue
        for f in _walk(given):
            if not f.is_file():
                continue
            key = f.resolve()
            if key in seen:
                continue
            seen.add(key)
            loader.report.files_seen += 1
            got = _load_file(f, loader, text_field=text_field, max_bytes=max_bytes)
            # A document's id is its content plus where it sits under the root it was given
            # from (the folder named, or the folder of a file named), never the path string:
            # "../x.json", "/abs/x.json" and a copy elsewhere are the same documents, and so
            # give the same chunk ids, RAFT groups and splits.
            where = f.relative_to(given).as_posix() if given.is_dir() else f.name
            for d in got:
                d.id = stable_id(where, d.id)
            if got:
                loader.report.files_loaded += 1
                loader.report.documents += len(got)
                yield from got


def _load_file(
    path: Path, loader: _Loader, *, text_field: str | None, max_bytes: int
) -> list[Document]:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _Skip(
                f"file is {_size(size)}, over the limit of {_size(max_bytes)}; raise --max-bytes"
            )
        if size == 0:
            raise _Skip("empty file")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise _Skip(f"cannot read: {e.strerror or e}") from e
        suffix = path.suffix.lower()
        if suffix == ".pdf":
            return _read_pdf(data, source, path)
        if suffix == ".json":
            return _read_json(data, source, path, text_field, loader)
        if suffix == ".jsonl":
            return _read_jsonl(data, source, path, text_field, loader)
        if suffix in HTML_SUFFIXES:
            return _read_html(data, source, path)
        if suffix in TEXT_SUFFIXES:
            return _read_text(data, source, path, TEXT_SUFFIXES[suffix])
        return _read_unknown(data, source, path)
    except _Skip as s:
        loader.skip(source, s.reason, s.line)
        return []


# --------------------------------------------------------------------------- shared helpers


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _size(n: int) -> str:
    if n >= 100_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1_000:
        return f"{n / 1_000:.1f} KB"
    return _plural(n, "byte")


def _decode(data: bytes, *, binary_hint: str = "") -> str:
    """UTF-8 text (a BOM is fine), or `_Skip` for binary / non-UTF-8 / whitespace-only data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _Skip("not UTF-8 (UTF-16 text); convert it with iconv -f utf-16 -t utf-8")
    if b"\x00" in data[:SNIFF_BYTES]:
        raise _Skip("binary file" + binary_hint)
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = bom + e.start
        raise _Skip(
            f"not UTF-8 (byte 0x{data[offset]:02x} at offset {offset}); "
            "convert it with iconv -f latin1 -t utf-8",
            line=data[:offset].count(b"\n") + 1,
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise _Skip("empty file")
    return text


def _doc(source: str, text: str, fmt: str, title: str, n: int = 0, **meta: Any) -> Document:
    """A document whose id is, for now, its place in the file (page, record) and its text;
    `load_corpus` adds the file's place under the corpus root."""
    metadata: dict[str, Any] = {"source": source, "format": fmt, "title": title, **meta}
    return Document(id=stable_id(str(n), text), text=text, metadata=metadata)


# --------------------------------------------------------------------------- text and markdown

_ATX_H1 = re.compile(r"^ {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _markdown_title(text: str) -> str | None:
    """The first level-1 heading (``# Title`` or a setext ``Title`` / ``=====``), outside code."""
    lines = text.split("\n")
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = _ATX_H1.match(line)
        if m:
            return m.group(1).strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r" {0,3}=+[ \t]*", nxt):
            return line.strip()
    return None


_HTML_START = re.compile(r"(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.I | re.S)


def _read_text(data: bytes, source: str, path: Path, fmt: str) -> list[Document]:
    text = _decode(data).strip()
    if fmt == "text" and _HTML_START.match(text):  # a saved web page named .txt
        return _read_html(data, source, path)
    title = (_markdown_title(text) if fmt == "markdown" else None) or path.stem
    return [_doc(source, text, fmt, title)]


def _read_unknown(data: bytes, source: str, path: Path) -> list[Document]:
    hint = f" ({path.suffix or 'no suffix'} is not a supported type; supported: {SUPPORTED})"
    try:
        text = _decode(data, binary_hint=hint).strip()
    except _Skip as s:
        if s.reason.startswith("not UTF-8"):
            raise _Skip(s.reason + hint, s.line) from None
        raise
    return [_doc(source, text, "text", path.stem)]


# --------------------------------------------------------------------------- HTML

_HTML_DROP = ("script", "style", "nav", "header", "footer", "aside", "noscript", "form", "template")
_HTML_BLOCKS = frozenset(
    "address article blockquote body caption dd details div dl dt fieldset figcaption figure "
    "h1 h2 h3 h4 h5 h6 hr li main ol p section summary table tbody thead tfoot tr ul".split()
)


def _html_blocks(root: Any) -> list[str]:
    """The text of `root` as paragraphs: one per block element, whitespace collapsed."""
    from bs4 import NavigableString, Tag
    from bs4.element import PreformattedString

    blocks: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        lines = (re.sub(r"\s+", " ", ln).strip() for ln in "".join(buf).split("\n"))
        buf.clear()
        text = "\n".join(ln for ln in lines if ln)
        if text:
            blocks.append(text)

    def walk(node: Any) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                if child.name == "br":
                    buf.append("\n")
                elif child.name == "pre":
                    flush()
                    pre = child.get_text().strip("\n").rstrip()
                    if pre.strip():
                        blocks.append(pre)
                elif child.name in _HTML_BLOCKS:
                    flush()
                    walk(child)
                    flush()
                else:
                    if child.name in ("td", "th"):
                        buf.append(" ")
                    walk(child)
            elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
                buf.append(re.sub(r"\s+", " ", str(child)))

    walk(root)
    flush()
    return blocks


def _read_html(data: bytes, source: str, path: Path) -> list[Document]:
    import warnings

    from bs4 import BeautifulSoup

    text = _decode(data)
    with warnings.catch_warnings():  # e.g. "looks like a URL/filename": we know it is a file
        warnings.simplefilter("ignore", UserWarning)
        soup = BeautifulSoup(text, "html.parser")
    title = ""
    if soup.title is not None:
        title = re.sub(r"\s+", " ", soup.title.get_text()).strip()
    if not title:
        h1 = soup.find("h1")
        title = re.sub(r"\s+", " ", h1.get_text()).strip() if h1 is not None else ""
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    main = soup.find("main")
    roots = [main] if main is not None else soup.find_all("article")
    if not roots:
        roots = [soup.body if soup.body is not None else soup]
    text = "\n\n".join(b for r in roots for b in _html_blocks(r))
    if not text.strip():
        raise _Skip("no text left after removing markup, scripts and navigation")
    return [_doc(source, text, "html", title or path.stem)]


# --------------------------------------------------------------------------- PDF


def _short_error(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    msg = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return msg if len(msg) <= 120 else msg[:117] + "..."


def _read_pdf(data: bytes, source: str, path: Path) -> list[Document]:
    import io

    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Skip("encrypted PDF; decrypt it first (e.g. qpdf --decrypt in.pdf out.pdf)")
        pages = list(reader.pages)
        meta_title = ""
        try:
            meta_title = ((reader.metadata or {}).get("/Title") or "").strip()
        except Exception:  # broken info dictionaries are common and harmless
            meta_title = ""
    except _Skip:
        raise
    except Exception as e:
        raise _Skip(f"corrupt PDF: {_short_error(e)}") from None
    title = meta_title if isinstance(meta_title, str) and meta_title else path.stem

    docs: list[Document] = []
    first_error: BaseException | None = None
    for number, page in enumerate(pages, start=1):
        try:
            text = (page.extract_text() or "").strip()
        except Exception as e:  # one unreadable page does not lose the others
            first_error = first_error or e
            continue
        if text:
            docs.append(_doc(source, text, "pdf", title, number, page=number))
    if not docs:
        if first_error is not None:
            raise _Skip(f"corrupt PDF: {_short_error(first_error)}")
        raise _Skip("no extractable text (scanned PDF?)")
    return docs


# --------------------------------------------------------------------------- JSON and JSONL


def _json_error(e: json.JSONDecodeError, line: int | None = None) -> str:
    return f"malformed JSON at line {line or e.lineno} col {e.colno}: {e.msg}"


def _get_field(record: dict[str, Any], dotted: str) -> Any:
    """`record[dotted]`, following ``a.b`` into nested objects; `KeyError` when absent."""
    if dotted in record:
        return record[dotted]
    value: Any = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)
    return json.dumps(value, ensure_ascii=False)


def _render_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _render_record(record: dict[str, Any]) -> str:
    """The record's one obvious text field, or else one ``key: value`` line per field."""
    rendered = {str(k): _render_value(v) for k, v in record.items()}
    for name in TEXT_FIELDS:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            others = (v for k, v in rendered.items() if k != name)
            if all(len(v) <= LONG_VALUE for v in others):
                return value.strip()
            break
    return "\n".join(f"{k}: {v}" for k, v in rendered.items())


def _record_title(record: dict[str, Any]) -> str | None:
    for name in TITLE_FIELDS:
        value = record.get(name)
        if value is not None and not isinstance(value, dict | list) and str(value).strip():
            return str(value).strip()
    return None


def _record_doc(
    record: Any,
    index: int,
    *,
    source: str,
    path: Path,
    fmt: str,
    text_field: str | None,
    loader: _Loader,
    line: int | None,
) -> Document | None:
    """One record as a document, or None (after reporting a skip)."""
    label = "record" if line is not None else f"record {index}"
    if isinstance(record, str) and text_field is None:
        record = {"text": record}
    if not isinstance(record, dict):
        kind = type(record).__name__ if record is not None else "null"
        loader.skip(source, f"{label} is a JSON {kind}, not an object", line)
        return None
    if text_field is not None:
        try:
            text = _as_text(_get_field(record, text_field)).strip()
        except KeyError:
            fields = ", ".join(str(k) for k in list(record)[:12])
            if len(record) > 12:
                fields += ", ..."
            loader.skip(
                source,
                f"{label} has no field '{text_field}' (fields: {fields or 'none'}); "
                "pass --text-field NAME",
                line,
            )
            return None
        if not text:
            loader.skip(source, f"empty text in field '{text_field}' of {label}", line)
            return None
    else:
        if not record:
            loader.skip(source, f"empty {label}", line)
            return None
        text = _render_record(record)
    title = _record_title(record) or f"{path.stem} #{index}"
    meta: dict[str, Any] = {"record": index}
    if line is not None:
        meta["line"] = line
    if "id" in record and record["id"] is not None:
        rid = record["id"]
        meta["record_id"] = rid if isinstance(rid, str | int | float) else str(rid)
    return _doc(source, text, fmt, title, index, **meta)


def _read_json(
    data: bytes, source: str, path: Path, text_field: str | None, loader: _Loader
) -> list[Document]:
    text = _decode(data)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        reason = _json_error(e)
        if e.msg == "Extra data":
            reason += " (several JSON values: is it JSON Lines? rename it to .jsonl)"
        raise _Skip(reason, e.lineno) from None
    if isinstance(obj, dict):
        listed = next((obj[k] for k in JSON_LIST_KEYS if isinstance(obj.get(k), list)), None)
        records = listed if listed is not None else [obj]
    elif isinstance(obj, list):
        records = obj
    else:
        raise _Skip(f"JSON holds a {type(obj).__name__}; expected a list of records or an object")
    if not records:
        raise _Skip("empty JSON: no records")
    docs = []
    for i, record in enumerate(records):
        doc = _record_doc(
            record,
            i,
            source=source,
            path=path,
            fmt="json",
            text_field=text_field,
            loader=loader,
            line=None,
        )
        if doc is not None:
            docs.append(doc)
    return docs


def _read_jsonl(
    data: bytes, source: str, path: Path, text_field: str | None, loader: _Loader
) -> list[Document]:
    text = _decode(data)
    docs = []
    index = -1
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        index += 1  # counts every non-blank line, so fixing one line keeps the others' ids
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            loader.skip(source, _json_error(e, lineno), lineno)
            continue
        doc = _record_doc(
            record,
            index,
            source=source,
            path=path,
            fmt="jsonl",
            text_field=text_field,
            loader=loader,
            line=lineno,
        )
        if doc is not None:
            docs.append(doc)
    return docs

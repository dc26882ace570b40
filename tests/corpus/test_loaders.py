"""Loading a corpus from real files: each format, folders, stable ids, every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragtune.corpus.loaders import LoadReport, Skipped, iter_files, load_corpus
from ragtune.errors import DataError

try:
    from .pdfutil import make_pdf
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from pdfutil import make_pdf

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLE_PDF = SHARED_DATA / "raft" / "samples" / "UC_Berkeley_short.pdf"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_one(path: Path, **kw):
    docs, report = load_corpus([path], **kw)
    return docs, report


# --------------------------------------------------------------------------- formats


def test_txt_keeps_text_and_uses_stem_as_title(tmp_path):
    f = write(tmp_path / "notes.txt", "First line.\n\nSecond paragraph.\n")
    docs, report = load_one(f)
    assert len(docs) == 1
    d = docs[0]
    assert d.text == "First line.\n\nSecond paragraph."
    assert d.metadata == {"source": str(f), "format": "text", "title": "notes"}
    assert (report.files_seen, report.files_loaded, report.documents) == (1, 1, 1)
    assert report.skipped == []


def test_markdown_title_is_first_h1_outside_code(tmp_path):
    md = "Intro text\n\n```\n# not a title\n```\n\n## Sub\n\n# Real Title\n\nBody **bold**.\n"
    docs, _ = load_one(write(tmp_path / "guide.md", md))
    assert docs[0].metadata["title"] == "Real Title"
    assert docs[0].metadata["format"] == "markdown"
    assert "Body **bold**." in docs[0].text and "# not a title" in docs[0].text


def test_markdown_without_heading_uses_stem(tmp_path):
    docs, _ = load_one(write(tmp_path / "plain-notes.md", "just text\n## only h2\n"))
    assert docs[0].metadata["title"] == "plain-notes"


HTML = """<!doctype html><html><head><title>  The Page </title>
<style>.x{color:red}</style><script>var secret = 1;</script></head>
<body><header><a href="/">Site header</a></header><nav>Home | About</nav>
<main><h1>Main heading</h1><p>First   paragraph
spans lines.</p><p>Second <b>bold</b> paragraph.<br>After break.</p>
<ul><li>item one</li><li>item two</li></ul>
<form><input name="q"> Search the site</form>
<pre>def f():
    return 1</pre></main>
<aside>Related links</aside><footer>Copyright</footer></body></html>"""


def test_html_main_text_without_boilerplate(tmp_path):
    docs, _ = load_one(write(tmp_path / "page.html", HTML))
    d = docs[0]
    assert d.metadata["title"] == "The Page"
    assert d.metadata["format"] == "html"
    paragraphs = d.text.split("\n\n")
    assert paragraphs == [
        "Main heading",
        "First paragraph spans lines.",
        "Second bold paragraph.\nAfter break.",
        "item one",
        "item two",
        "def f():\n    return 1",
    ]
    for junk in ("secret", "color", "Site header", "Home", "Related", "Copyright", "Search"):
        assert junk not in d.text


def test_html_article_and_h1_title(tmp_path):
    html = (
        "<html><body><div>Outside the article</div>"
        "<article><h1>Article Title</h1><p>Article body.</p></article></body></html>"
    )
    docs, _ = load_one(write(tmp_path / "a.htm", html))
    assert docs[0].metadata["title"] == "Article Title"
    assert docs[0].text == "Article Title\n\nArticle body."


def test_html_without_main_uses_body(tmp_path):
    docs, _ = load_one(write(tmp_path / "b.html", "<p>one</p><div>two</div>"))
    assert docs[0].text == "one\n\ntwo"
    assert docs[0].metadata["title"] == "b"


def test_pdf_one_document_per_page(tmp_path):
    f = make_pdf(tmp_path / "report.pdf", ["Alpha page text", "Beta page text"])
    docs, report = load_one(f)
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert [d.text for d in docs] == ["Alpha page text", "Beta page text"]
    assert all(d.metadata["format"] == "pdf" and d.metadata["source"] == str(f) for d in docs)
    assert docs[0].metadata["title"] == "report"
    assert len({d.id for d in docs}) == 2
    assert report.files_loaded == 1 and report.documents == 2


def test_pdf_blank_pages_are_skipped_silently(tmp_path):
    f = make_pdf(tmp_path / "mixed.pdf", ["", "Only text page", ""])
    docs, report = load_one(f)
    assert [(d.metadata["page"], d.text) for d in docs] == [(2, "Only text page")]
    assert report.skipped == []


API_RECORDS = [
    {
        "user_name": "someone",
        "api_name": "Gmail API - Users.getProfile",
        "api_call": "service.users().getProfile(userId='me').execute()",
        "api_arguments": {"userId": "The user's email address."},
        "env_requirements": ["google-auth", "httplib2"],
        "stars": 3,
    },
    {"id": "r2", "name": "Second", "api_version": None},
]


def test_json_records_render_as_api_docs(tmp_path):
    f = write(tmp_path / "apis.json", json.dumps(API_RECORDS, indent=2))
    docs, report = load_one(f)
    assert len(docs) == 2
    first, second = docs
    assert first.text.split("\n") == [
        "user_name: someone",
        "api_name: Gmail API - Users.getProfile",
        "api_call: service.users().getProfile(userId='me').execute()",
        'api_arguments: {"userId": "The user\'s email address."}',
        'env_requirements: ["google-auth", "httplib2"]',
        "stars: 3",
    ]
    assert first.metadata == {
        "source": str(f),
        "format": "json",
        "title": "Gmail API - Users.getProfile",
        "record": 0,
    }
    assert second.metadata["title"] == "Second"
    assert second.metadata["record"] == 1 and second.metadata["record_id"] == "r2"
    assert "api_version: null" in second.text
    assert report.documents == 2 and report.files_loaded == 1


def test_json_obvious_text_field_and_wrappers(tmp_path):
    long_text = "A long passage about the topic. " * 20
    wrapped = {"data": [{"id": 7, "title": "T", "text": long_text}]}
    docs, _ = load_one(write(tmp_path / "wrapped.json", json.dumps(wrapped)))
    assert docs[0].text == long_text.strip()
    assert docs[0].metadata["title"] == "T" and docs[0].metadata["record_id"] == 7

    # another long field: not "one obvious text field", so it is rendered as key: value lines
    two_long = {"content": long_text, "notes": long_text}
    docs, _ = load_one(write(tmp_path / "single.json", json.dumps(two_long)))
    assert docs[0].text.startswith("content: A long passage")
    assert "\nnotes: A long passage" in docs[0].text
    assert docs[0].metadata["title"] == "single #0"


def test_json_text_field_dotted_path(tmp_path):
    records = {"items": [{"meta": {"body": "nested body"}}, {"meta": {"body": "second"}}]}
    docs, _ = load_one(write(tmp_path / "n.json", json.dumps(records)), text_field="meta.body")
    assert [d.text for d in docs] == ["nested body", "second"]
    assert [d.metadata["record"] for d in docs] == [0, 1]


def test_jsonl_one_record_per_line_blank_lines_ignored(tmp_path):
    lines = ['{"q": "a", "passage": "first passage"}', "", '{"q": "b", "passage": "second"}', ""]
    f = write(tmp_path / "qa.jsonl", "\n".join(lines))
    docs, report = load_one(f, text_field="passage")
    assert [d.text for d in docs] == ["first passage", "second"]
    assert [d.metadata["record"] for d in docs] == [0, 1]
    assert [d.metadata["line"] for d in docs] == [1, 3]
    assert docs[0].metadata["format"] == "jsonl"
    assert report.skipped == []


def test_unknown_suffix_text_is_loaded(tmp_path):
    docs, _ = load_one(write(tmp_path / "README", "plain readme text"))
    assert docs[0].text == "plain readme text" and docs[0].metadata["title"] == "README"


def test_utf8_bom_is_fine(tmp_path):
    docs, report = load_one(write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello bom"))
    assert docs[0].text == "hello bom" and report.skipped == []


# --------------------------------------------------------------------------- folders and ids


def make_tree(root: Path) -> None:
    write(root / "b.txt", "b")
    write(root / "a.md", "# A\n\na")
    write(root / "sub" / "deeper" / "c.txt", "c")
    write(root / "sub" / "d.json", '[{"text": "d"}]')
    write(root / ".git" / "config", "[core]")
    write(root / ".hidden.txt", "hidden")
    write(root / "sub" / ".cache" / "x.txt", "cached")


def test_iter_files_recurses_sorted_and_skips_hidden(tmp_path):
    make_tree(tmp_path)
    rel = [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])]
    assert rel == ["a.md", "b.txt", "sub/d.json", "sub/deeper/c.txt"]
    # a file named twice (directly and through its folder) is given once
    assert len(list(iter_files([tmp_path / "b.txt", tmp_path]))) == 4


def test_folder_load_and_stable_ids(tmp_path):
    make_tree(tmp_path)
    docs1, report = load_corpus([tmp_path])
    docs2, _ = load_corpus([str(tmp_path)])
    assert sorted(d.text for d in docs1) == ["# A\n\na", "b", "c", "d"]
    assert [d.id for d in docs1] == [d.id for d in docs2]
    assert len({d.id for d in docs1}) == len(docs1)
    assert report.summary() == "4 files, 4 loaded, 4 documents, 0 skipped"
    assert {d.metadata["source"] for d in docs1} >= {str(tmp_path / "sub" / "deeper" / "c.txt")}


# --------------------------------------------------------------------------- bad input

LATIN1 = "café".encode("latin-1")  # b"caf\xe9"

BAD_FILES: list[tuple[str, bytes, str, int | None]] = [
    # name, content, expected reason (substring), expected line
    ("corrupt.pdf", b"%PDF-1.4\n garbage", "corrupt PDF: ", None),
    ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file", None),
    ("nul.txt", b"text with a \x00 nul", "binary file", None),
    ("zero.txt", b"", "empty file", None),
    ("blank.md", b"  \n\t\n", "empty file", None),
    ("latin.txt", b"line one\n" + LATIN1, "not UTF-8 (byte 0xe9 at offset 12); convert it", 2),
    ("bad.json", b'[{"a": 1},\n {"a": }]', "malformed JSON at line 2 col 8: ", 2),
]


@pytest.mark.parametrize(("name", "content", "reason", "line"), BAD_FILES)
def test_bad_file_is_skipped_and_the_rest_loads(tmp_path, name, content, reason, line):
    good = write(tmp_path / "good.txt", "good text")
    bad = write(tmp_path / name, content)
    seen: list[Skipped] = []
    docs, report = load_corpus([tmp_path], on_skip=seen.append)
    assert [d.text for d in docs] == ["good text"]
    assert docs[0].metadata["source"] == str(good)
    assert len(report.skipped) == 1 and seen == report.skipped
    s = report.skipped[0]
    assert s.path == str(bad)
    assert reason in s.reason
    assert s.line == line
    assert report.files_seen == 2 and report.files_loaded == 1
    assert report.summary().startswith("2 files, 1 loaded, 1 document, 1 skipped (1 ")


def test_scanned_pdf_without_text_is_skipped(tmp_path):
    f = make_pdf(tmp_path / "scan.pdf", ["", ""])
    docs, report = load_one(f)
    assert docs == []
    assert report.skipped == [Skipped(str(f), "no extractable text (scanned PDF?)")]


def test_missing_path_and_too_large(tmp_path):
    big = write(tmp_path / "big.txt", "x" * 2_000)
    small = write(tmp_path / "small.txt", "ok")
    docs, report = load_corpus([tmp_path / "nope", big, small], max_bytes=1_000)
    assert [d.text for d in docs] == ["ok"]
    missing, large = report.skipped
    assert missing == Skipped(str(tmp_path / "nope"), "no such file or directory")
    assert large.path == str(big)
    assert large.reason == "file is 2.0 KB, over the limit of 1.0 KB; raise --max-bytes"


def test_size_limit_reported_in_mb(tmp_path):
    f = write(tmp_path / "big.txt", b"x" * 300_000)
    _, report = load_one(f, max_bytes=200_000)
    assert report.skipped[0].reason.startswith("file is 0.3 MB, over the limit of 0.2 MB")


def test_records_without_text_field_are_skipped_with_line(tmp_path):
    jl = write(
        tmp_path / "r.jsonl",
        '{"text": "one"}\n{"a": 1, "b": 2, "c": 3}\n\n{"text": "three"}\n{broken\n',
    )
    js = write(tmp_path / "r.json", json.dumps([{"text": "x"}, {"body": "y"}]))
    docs, report = load_corpus([jl, js], text_field="text")
    assert [d.text for d in docs] == ["one", "three", "x"]
    assert [d.metadata["record"] for d in docs] == [0, 2, 0]
    s1, s2, s3 = report.skipped
    assert (s1.path, s1.line) == (str(jl), 2)
    assert s1.reason == "record has no field 'text' (fields: a, b, c); pass --text-field NAME"
    assert (s2.path, s2.line) == (str(jl), 5)
    assert s2.reason.startswith("malformed JSON at line 5 col 2: ")
    assert (s3.path, s3.line) == (str(js), None)
    assert s3.reason.startswith("record 1 has no field 'text' (fields: body)")
    assert report.summary() == (
        "2 files, 2 loaded, 3 documents, 3 skipped (2 missing field, 1 malformed JSON)"
    )


def test_summary_counts_every_kind(tmp_path):
    write(tmp_path / "ok.txt", "fine")
    write(tmp_path / "ok.md", "# Fine\n")
    write(tmp_path / "e1.txt", "")
    write(tmp_path / "e2.txt", "   ")
    write(tmp_path / "bin.dat", b"\x00\x01\x02")
    write(tmp_path / "l.txt", LATIN1)
    write(tmp_path / "c.pdf", b"%PDF-1.4\n garbage")
    docs, report = load_corpus([tmp_path, tmp_path / "gone.txt"])
    assert len(docs) == 2
    assert report.summary() == (
        "8 files, 2 loaded, 2 documents, 6 skipped "
        "(2 empty, 1 binary, 1 corrupt PDF, 1 missing, 1 not UTF-8)"
    )
    kinds = {Path(s.path).name: s.kind for s in report.skipped}
    assert kinds["bin.dat"] == "binary" and kinds["gone.txt"] == "missing"


def test_summary_format():
    report = LoadReport(12, 11, 40, [Skipped("x.txt", "empty file")])
    assert report.summary() == "12 files, 11 loaded, 40 documents, 1 skipped (1 empty)"


# --------------------------------------------------------------------------- strict mode


def test_strict_raises_data_error_naming_the_file(tmp_path):
    write(tmp_path / "a.txt", "fine")
    bad = write(tmp_path / "b.txt", "")
    with pytest.raises(DataError, match="empty file") as exc:
        load_corpus([tmp_path], strict=True)
    assert exc.value.path == str(bad) and str(bad) in str(exc.value)


def test_strict_names_the_jsonl_line(tmp_path):
    f = write(tmp_path / "r.jsonl", '{"text": "ok"}\n{"other": 1}\n')
    with pytest.raises(DataError, match="has no field 'text'") as exc:
        load_corpus([f], text_field="text", strict=True)
    assert (exc.value.path, exc.value.line) == (str(f), 2)
    assert f"{f}:2: " in str(exc.value)


def test_strict_corrupt_pdf(tmp_path):
    f = write(tmp_path / "c.pdf", b"%PDF-1.4\n garbage")
    with pytest.raises(DataError, match="corrupt PDF") as exc:
        load_corpus([f], strict=True)
    assert exc.value.path == str(f)


# --------------------------------------------------------------------------- the shared sample


@pytest.mark.skipif(not SAMPLE_PDF.exists(), reason="shared sample data not present")
def test_sample_pdf_loads_pages():
    docs, report = load_corpus([SAMPLE_PDF])
    assert len(docs) >= 1 and report.skipped == []
    pages = [d.metadata["page"] for d in docs]
    assert pages == sorted(pages) and pages[0] >= 1
    assert all(d.text.strip() for d in docs)
    assert "Berkeley" in docs[0].text


def test_txt_that_is_a_saved_web_page_is_read_as_html(tmp_path):
    docs, _ = load_one(write(tmp_path / "blog.txt", "<!DOCTYPE html>\n" + HTML))
    assert docs[0].metadata["format"] == "html" and docs[0].metadata["title"] == "The Page"
    assert "secret" not in docs[0].text


def test_ids_depend_on_content_and_place_under_the_root_not_the_path_string(tmp_path, monkeypatch):
    make_tree(tmp_path / "corpus")
    write(tmp_path / "copy" / "b.txt", "b")
    monkeypatch.chdir(tmp_path / "corpus" / "sub")
    by_rel = [d.id for d in load_corpus([".."])[0]]
    assert by_rel == [d.id for d in load_corpus([tmp_path / "corpus"])[0]]
    one = load_corpus(["../b.txt"])[0][0].id
    assert one == load_corpus([tmp_path / "corpus" / "b.txt"])[0][0].id
    assert one == load_corpus([tmp_path / "copy" / "b.txt"])[0][0].id  # the same file, moved
    write(tmp_path / "copy" / "b.txt", "b, edited")
    assert load_corpus([tmp_path / "copy" / "b.txt"])[0][0].id != one

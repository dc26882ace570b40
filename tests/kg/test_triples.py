"""Reading triple files: every format from real files, detection, bad lines."""

import json

import pytest

from ragtune.errors import DataError
from ragtune.kg import detect_format, load_triples, read_triples

EXPECTED = [("Heat", "directed_by", "Michael Mann"), ("Heat", "release_year", "1995")]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("kb.tsv", "Heat\tdirected_by\tMichael Mann\n\nHeat\trelease_year\t1995\n", "tsv"),
        ("kb.txt", " Heat \t directed_by\tMichael Mann\r\nHeat\trelease_year\t1995", "tsv"),
        ("kb.txt", "Heat|directed_by|Michael Mann\n  \nHeat|release_year|1995\n", "pipe"),
        (
            "kb.csv",
            "subject,relation,object\nHeat,directed_by,Michael Mann\nHeat,release_year,1995\n",
            "csv",
        ),
        ("kb.csv", 'Heat,directed_by,"Michael Mann"\n\nHeat,release_year,1995\n', "csv"),
        ("kb.data", "Heat,directed_by,Michael Mann\nHeat,release_year,1995\n", "csv"),
        (
            "kb.jsonl",
            json.dumps({"subject": "Heat", "relation": "directed_by", "object": "Michael Mann"})
            + "\n\n"
            + json.dumps({"head": "Heat", "relation": "release_year", "tail": 1995})
            + "\n",
            "jsonl",
        ),
        (
            "kb.txt",
            json.dumps({"s": "Heat", "r": "directed_by", "o": "Michael Mann"})
            + "\n"
            + json.dumps({"s": "Heat", "r": "release_year", "o": "1995"}),
            "jsonl",
        ),
    ],
)
def test_formats(tmp_path, name, text, fmt):
    p = write(tmp_path / name, text)
    assert detect_format(p) == fmt
    triples, report = load_triples([p])
    assert triples == EXPECTED
    assert report.formats == {str(p): fmt} and report.triples == 2 and not report.skipped


def test_names_kept_verbatim_but_stripped(tmp_path):
    p = write(tmp_path / "kb.tsv", "  Ocean's Eleven\tstarred_actors\tGeorge  Clooney \n")
    assert list(read_triples(p)) == [("Ocean's Eleven", "starred_actors", "George  Clooney")]


def test_csv_quoted_comma(tmp_path):
    p = write(tmp_path / "kb.csv", '"Crouching Tiger, Hidden Dragon",directed_by,Ang Lee\n')
    assert list(read_triples(p)) == [("Crouching Tiger, Hidden Dragon", "directed_by", "Ang Lee")]


@pytest.mark.parametrize(
    ("name", "text", "line", "fix"),
    [
        ("kb.tsv", "a\tr\tb\na\tr\n", 2, "expected 3 TAB-separated fields"),
        ("kb.txt", "a|r|b\n\na|r|b|c\n", 3, "may not contain '|'"),
        ("kb.csv", "a,r,b\na,r,b,c\n", 2, "quote names that contain commas"),
        ("kb.tsv", "a\tr\tb\na\t \tb\n", 2, "empty relation"),
        ("kb.jsonl", '{"s": "a", "r": "r", "o": "b"}\n{"s": "a",\n', 2, "malformed JSON"),
        ("kb.jsonl", '{"x": "a"}\n', 1, "use subject/relation/object"),
        ("kb.jsonl", '["a", "r", "b"]\n', 1, "not a JSON object"),
        ("kb.jsonl", '{"s": "a\\nb", "r": "r", "o": "b"}\n', 1, "line break"),
    ],
)
def test_bad_line_names_file_and_line(tmp_path, name, text, line, fix):
    p = write(tmp_path / name, text)
    with pytest.raises(DataError) as e:
        load_triples([p])
    assert e.value.path == str(p) and e.value.line == line
    assert f"{p}:{line}:" in str(e.value) and fix in str(e.value)
    assert "strict=False" in str(e.value)


def test_not_strict_skips_and_reports(tmp_path):
    a = write(tmp_path / "a.tsv", "x\tr\ty\nbroken line\nx\tr\tz\n")
    b = write(tmp_path / "b.txt", "p|q|r\n|q|r\n")
    seen = []
    triples, report = load_triples([a, b], strict=False, on_bad=seen.append)
    assert triples == [("x", "r", "y"), ("x", "r", "z"), ("p", "q", "r")]
    assert [(s.path, s.line) for s in report.skipped] == [(str(a), 2), (str(b), 2)]
    assert seen == report.skipped
    assert report.files == {str(a): 2, str(b): 1}
    assert report.summary() == "2 files, 3 triples, 2 skipped lines"
    assert "empty subject" in str(report.skipped[1])


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_triples([tmp_path / "nope.tsv"])
    with pytest.raises(DataError, match="empty"):
        detect_format(write(tmp_path / "empty.txt", "\n\n"))
    with pytest.raises(DataError, match="cannot tell the triple format"):
        detect_format(write(tmp_path / "words.txt", "just words here\n"))
    with pytest.raises(DataError, match="unknown triple format"):
        list(read_triples(write(tmp_path / "k.tsv", "a\tb\tc\n"), "xml"))
    (tmp_path / "latin1.tsv").write_bytes("caf\xe9\tr\tb\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_triples([tmp_path / "latin1.tsv"])

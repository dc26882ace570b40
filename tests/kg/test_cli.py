"""`ragtune kg load` and `ragtune kg paths` through ragtune.cli.main, on real files."""

import json

import pytest

from ragtune.cli import main


@pytest.fixture(scope="module", autouse=True)
def _kg_commands():
    from ragtune.cli import _register, app
    from ragtune.cli.kg import kg_app

    _register()
    if not any(g.name == "kg" for g in app.registered_groups):  # until commands.py adds it
        app.add_typer(kg_app, name="kg")


def run(argv, capsys, code=0):
    try:
        main([str(a) for a in argv])
        got = 0
    except SystemExit as e:
        got = e.code
    out = capsys.readouterr()
    assert got == code, out.err + out.out
    return out


def test_load_then_paths(tmp_path, capsys):
    (tmp_path / "kb.txt").write_text(
        "Heat|directed_by|Michael Mann\nCollateral|directed_by|Michael Mann\n"
        "bad line\nHeat|release_year|1995\nHeat|directed_by|Michael Mann\n"
    )
    (tmp_path / "more.tsv").write_text("Collateral\trelease_year\t2004\n")
    out = run(
        ["kg", "load", tmp_path / "kb.txt", tmp_path / "more.tsv", "--out", tmp_path / "kg"], capsys
    )
    assert "2 files, 5 triples, 1 skipped line" in out.out
    assert "5 entities, 2 relations, 4 edges" in out.out and "1 duplicate" in out.out
    assert "kb.txt:3" in out.err and "skipped" in out.err
    assert json.loads((tmp_path / "kg" / "params.json").read_text())["edges"] == 4

    out = run(
        [
            "kg",
            "paths",
            tmp_path / "kg",
            "michael mann",
            "--relations",
            "~directed_by,release_year",
        ],
        capsys,
    )
    assert out.out.splitlines() == [
        "Michael Mann -> ~directed_by -> Collateral -> release_year -> 2004",
        "Michael Mann -> ~directed_by -> Heat -> release_year -> 1995",
    ]
    out = run(
        [
            "kg",
            "paths",
            tmp_path / "kg",
            "Michael Mann",
            "--relations",
            "~directed_by",
            "--max-paths",
            "1",
        ],
        capsys,
    )
    assert out.out.splitlines() == ["Michael Mann -> ~directed_by -> Collateral"]
    assert "more paths exist" in out.err
    out = run(["kg", "paths", tmp_path / "kg", "Heat", "--relations", "~directed_by"], capsys)
    assert out.out == "" and "no path" in out.err

    out = run(
        ["kg", "paths", tmp_path / "kg", "Nobody", "--relations", "directed_by"], capsys, code=2
    )
    assert "'Nobody' is not in" in out.err and "Traceback" not in out.err
    out = run(["kg", "paths", tmp_path / "kg", "Heat", "--relations", "directed"], capsys, code=2)
    assert "did you mean 'directed_by'" in out.err


def test_load_strict_fails_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "kb.tsv").write_text("a\tr\tb\nbroken\n")
    out = run(
        ["kg", "load", tmp_path / "kb.tsv", "--out", tmp_path / "kg", "--strict"], capsys, code=2
    )
    assert "kb.tsv:2:" in out.err and "expected 3 TAB-separated fields" in out.err
    assert not (tmp_path / "kg").exists()
    out = run(["kg", "load", tmp_path / "kb.tsv"], capsys, code=2)
    assert "missing OUT" in out.err

"""Every Python example in the README and in ragtune's docstrings runs as written.

Examples are the README's ```python blocks and the indented blocks of docstrings that start with
`import` or `from` (shell lines such as `ragtune index ...` are not Python and are left alone).
They run in one scratch directory that holds what a reader of the examples has at hand: the
bundled GlimmerDB docs as `docs/`, a small `kb.txt` of triples, and whatever earlier examples
wrote (the README's index first, as a reader would build it).
"""

from __future__ import annotations

import ast
import re
import shutil
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        (f"README.md#{i}", m.group(1))
        for i, m in enumerate(re.finditer(r"```python\n(.*?)```", text, re.S))
    ]


def _code_runs(doc: str) -> list[str]:
    """The Python examples of one (cleaned) docstring: a paragraph whose first line starts with
    `import`/`from`, extended by the paragraphs after it while the whole still parses as Python
    (prose and shell lines do not), whatever the indentation (ruff format dedents docstrings)."""
    paras = re.split(r"\n[ \t]*\n", doc)
    out, i = [], 0
    while i < len(paras):
        head = textwrap.dedent(paras[i])
        if not re.match(r"(import|from) \w", head):
            i += 1
            continue
        ast.parse(head)  # a paragraph that starts like Python must be Python
        indent = len(paras[i]) - len(paras[i].lstrip(" "))
        block, i = paras[i], i + 1
        while i < len(paras):
            nxt = paras[i]
            if len(nxt) - len(nxt.lstrip(" ")) < indent:
                break
            try:
                ast.parse(textwrap.dedent(block + "\n\n" + nxt))
            except SyntaxError:
                break
            block, i = block + "\n\n" + nxt, i + 1
        out.append(textwrap.dedent(block).strip("\n") + "\n")
    return out


def docstring_blocks() -> list[tuple[str, str]]:
    """(where, code) for each Python example of every docstring in the package."""
    out = []
    for path in sorted((ROOT / "ragtune").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [tree] + [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        for node in nodes:
            doc = ast.get_docstring(node, clean=True)
            for code in _code_runs(doc or ""):
                rel = path.relative_to(ROOT)
                out.append((f"{rel}:{getattr(node, 'name', '<module>')}", code))
    return out


def test_the_collector_finds_the_examples():
    where = {w for w, _ in docstring_blocks()}
    # the package docstring, the index job and the KG tour at least: a broken regex finds none
    assert {"ragtune/__init__.py:<module>", "ragtune/corpus/build.py:<module>"} <= where
    assert "ragtune/kg/__init__.py:<module>" in where
    assert readme_blocks()


KB = """Heat\tdirected_by\tMichael Mann
Heat\tstarred_actors\tAl Pacino
Heat\trelease_year\t1995
Collateral\tdirected_by\tMichael Mann
Collateral\tstarred_actors\tTom Cruise
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from ragtune.examples import GLIMMERDB

    d = tmp_path_factory.mktemp("examples")
    shutil.copytree(GLIMMERDB, d / "docs")
    (d / "kb.txt").write_text(KB, encoding="utf-8")
    return d


@pytest.fixture(scope="module", autouse=True)
def _one_bundled_model():
    """The examples name `smollm2-135m` several times: load it once (memoised, same object)."""
    import ragtune.llm.spec as spec

    real, cache = spec.load_lm, {}

    def load_lm(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = real(name, **kw)
        return cache[key]

    mp = pytest.MonkeyPatch()
    mp.setattr(spec, "load_lm", load_lm)
    yield
    mp.undo()


EXAMPLES = readme_blocks() + docstring_blocks()


@pytest.mark.parametrize("where,code", EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_runs_as_written(where, code, workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    if (
        not (workspace / "out" / "index").exists()
        and "out/index" in code
        and "build_index" not in code
    ):
        # examples that read the index come after one that builds it, as for a reader
        run_as_module(readme_blocks()[0][1], "README.md#0", monkeypatch)
    run_as_module(code, where, monkeypatch)


def run_as_module(code: str, where: str, monkeypatch) -> None:
    """Run `code` as the body of a fresh module, as `python example.py` would."""
    import sys
    import types

    mod = types.ModuleType("__example__")
    monkeypatch.setitem(sys.modules, "__example__", mod)  # dataclasses look their module up
    exec(compile(code, where, "exec"), mod.__dict__)

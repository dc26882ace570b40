from dataclasses import dataclass, field

import pytest

from ragtune.config import load_config
from ragtune.errors import ConfigError


@dataclass
class Job:
    name: str = field(default="x", metadata={"help": "a name"})
    k: int = field(default=5, metadata={"help": "count"})
    lr: float = field(default=1e-4, metadata={"help": "rate"})
    tags: list[str] = field(default_factory=list, metadata={"help": "tags"})
    ks: list[int] = field(default_factory=list, metadata={"help": "ints"})
    sweep: list[int] = field(default_factory=lambda: [0, 2], metadata={"help": "ints"})
    adapter: str | None = field(default=None, metadata={"help": "optional"})


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "j.yaml"
    p.write_text("name: hello\nk: 3\nlr: 1\ntags: a, b\n")
    cfg = load_config(Job, p, k=9)
    assert (cfg.name, cfg.k, cfg.lr, cfg.tags) == ("hello", 9, 1.0, ["a", "b"])
    assert load_config(Job).k == 5


def test_unknown_and_mistyped_keys(tmp_path):
    p = tmp_path / "j.yaml"
    p.write_text("nmae: typo\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) nmae.*valid keys: name, k"):
        load_config(Job, p)
    p.write_text("k: many\n")
    with pytest.raises(ConfigError, match="field 'k' of Job must be int"):
        load_config(Job, p)
    p.write_text("k: [1\n")
    with pytest.raises(ConfigError, match="j.yaml at line 2: not valid YAML"):
        load_config(Job, p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Job, tmp_path / "nope.yaml")


def test_list_items_are_converted():
    assert load_config(Job, ks=["0", "2"]).ks == [0, 2]
    with pytest.raises(ConfigError, match="list of int"):
        load_config(Job, ks=["two"])


def test_command_line_int_lists_take_commas_and_repeats():
    import typer
    from typer.testing import CliRunner

    from ragtune.config import typer_command

    seen = []
    app = typer.Typer()
    app.command("job")(typer_command(Job, seen.append))
    app.command("other")(lambda: None)  # two commands: typer keeps the subcommand name
    r = CliRunner()
    assert r.invoke(app, ["job", "--ks", "0,1,8"]).exit_code == 0
    assert r.invoke(app, ["job", "--ks", "2", "--ks", "4"]).exit_code == 0
    assert [j.ks for j in seen] == [[0, 1, 8], [2, 4]]
    assert r.invoke(app, ["job", "--sweep", ""]).exit_code == 0  # explicitly none
    assert r.invoke(app, ["job"]).exit_code == 0  # the default
    assert [j.sweep for j in seen[2:]] == [[], [0, 2]]
    bad = r.invoke(app, ["job", "--ks", "0,x"])
    assert bad.exit_code != 0 and "list of int" in str(bad.exception or bad.output)

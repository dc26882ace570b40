"""Optional parts fail with a message that names the extra to install, from the job a user calls."""

from __future__ import annotations

import sys

import pytest

from ragtune.errors import MissingExtra


def _hide(monkeypatch, *modules: str) -> None:
    for m in modules:  # `import m` now raises ImportError, as if it were not installed
        monkeypatch.setitem(sys.modules, m, None)


def test_training_without_peft_names_the_train_extra(tmp_path, monkeypatch, tiny_model):
    from ragtune.train.trainer import TrainConfig, train

    _hide(monkeypatch, "peft")
    with pytest.raises(MissingExtra, match=r"pip install 'ragtune\[train\]'") as e:
        train(TrainConfig(data=str(tmp_path), out=str(tmp_path / "o"), model=str(tiny_model)))
    assert e.value.extra == "train"


def test_an_adapter_without_peft_names_the_train_extra(tmp_path, monkeypatch, tiny_model):
    from ragtune.llm.local import TransformersLM

    (tmp_path / "adapter_config.json").write_text("{}")
    _hide(monkeypatch, "peft")
    with pytest.raises(MissingExtra, match=r"--adapter needs peft.*ragtune\[train\]"):
        TransformersLM(tiny_model, adapter=tmp_path)


def test_server_and_plots_name_their_extras(monkeypatch):
    from ragtune.extras import require

    _hide(monkeypatch, "fastapi", "matplotlib")
    monkeypatch.delitem(sys.modules, "ragtune.server", raising=False)
    with pytest.raises(MissingExtra, match=r"the server needs fastapi.*ragtune\[server\]"):
        import ragtune.server  # noqa: F401
    with pytest.raises(MissingExtra, match=r"ragtune\[eval\]"):
        require("matplotlib", "the evaluation's plots")

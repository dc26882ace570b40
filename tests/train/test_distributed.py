"""Data-parallel training (ragtune.train.distributed): 2 processes on gloo, on the CPU.

N processes with --grad-accum G take the same global batch as one process with N x G, so the
loss curve, the eval loss and the adapter must match one process's (up to float summation
order); a checkpoint of one process resumes on two.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ragtune.errors import ConfigError
from ragtune.train.distributed import _free_port
from ragtune.train.trainer import TrainConfig, train

# Each launch starts 2 processes that import torch, transformers and peft: ~25 s on 2 cores,
# so the two launching tests are slow (.ci/run runs them after `make test`).


def make_chat(tmp_path, n=40):
    d = tmp_path / "chat"
    d.mkdir()
    for split, rng in (("train", range(n)), ("valid", range(n, n + 8))):
        with open(d / f"{split}.jsonl", "w") as f:
            for i in rng:
                msgs = [
                    {"role": "user", "content": f"Item {i} belongs to class {i % 4}. Which class?"},
                    {"role": "assistant", "content": f"The answer is class {i % 4}."},
                ]
                f.write(json.dumps({"messages": msgs}) + "\n")
    return d


def losses(out):
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["step"] for r in log if "loss" in r], np.array(
        [r["loss"] for r in log if "loss" in r]
    )


def adapter_weights(out):
    from safetensors.numpy import load_file

    return load_file(str(out / "adapter" / "adapter_model.safetensors"))


def settings(tmp_path, tiny_model, **kw):
    base = dict(
        data=str(make_chat(tmp_path) if not (tmp_path / "chat").exists() else tmp_path / "chat"),
        model=str(tiny_model),
        lr=1e-2,
        max_steps=6,
        batch_tokens=256,
        save_every=0,
        threads=1,
        lora_dropout=0.0,  # dropout masks are drawn per process: off, so the runs can match
    )
    return {**base, **kw}


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path, tiny_model):
    from ragtune.llm.local import TransformersLM

    kw = settings(tmp_path, tiny_model)
    one = train(TrainConfig(out=str(tmp_path / "one"), grad_accum=2, **kw))
    seen = []
    two = train(
        TrainConfig(out=str(tmp_path / "two"), grad_accum=1, processes=2, **kw),
        progress=lambda step, total, rec: seen.append((step, total)),
    )
    assert seen == [(i, 6) for i in range(1, 7)]  # the launching process reports the ranks'
    s1, l1 = losses(tmp_path / "one")
    s2, l2 = losses(tmp_path / "two")
    assert s1 == s2 == [1, 2, 3, 4, 5, 6]  # one log, written once (rank 0)
    assert l1[-1] < l1[0]  # it learns
    np.testing.assert_allclose(l2, l1, rtol=1e-4, atol=1e-5)
    assert two["processes"] == 2 and two["steps"] == one["steps"] == 6
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-4)
    w1, w2 = adapter_weights(tmp_path / "one"), adapter_weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for k in w1:
        np.testing.assert_allclose(w2[k], w1[k], rtol=1e-4, atol=1e-5)
    assert not list((tmp_path / "two").glob("checkpoint-*"))
    ask = [[{"role": "user", "content": "Item 3 belongs to class 3. Which class?"}]]
    answers = [
        TransformersLM(tiny_model, adapter=tmp_path / run / "adapter", threads=1)
        .generate(ask, max_tokens=6)[0]
        .text
        for run in ("one", "two")
    ]
    assert answers[1] == answers[0]


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_under_accelerate_launch(tmp_path, tiny_model):
    kw = settings(tmp_path, tiny_model)
    ref = train(TrainConfig(out=str(tmp_path / "ref"), grad_accum=2, **kw))

    def stop_at_3(step, total, rec):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=str(tmp_path / "run"), grad_accum=2, **kw), progress=stop_at_3)
    assert (tmp_path / "run" / "checkpoint-3" / "state.json").exists()
    # the user's own launch: `accelerate launch ... -m ragtune.cli train`, same global batch (2 x 1)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes"]
    cmd += ["2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += [
        "--main_process_port",
        str(_free_port()),
        "-m",
        "ragtune.cli",
        "train",
        *flags,
        "--grad-accum",
        "1",
    ]
    cmd += ["--out", str(tmp_path / "run")]
    res = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("trained 6 steps") == 1  # rank 0 reports, rank 1 is quiet
    assert "resumed from step 3" in res.stdout
    s = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert s["resumed_from"] == 3 and s["steps"] == 6 and s["processes"] == 2
    steps, got = losses(tmp_path / "run")
    assert steps == [1, 2, 3, 4, 5, 6]  # continues, no repeats
    np.testing.assert_allclose(got, losses(tmp_path / "ref")[1], rtol=1e-4, atol=1e-5)
    assert s["last_loss"] == pytest.approx(ref["last_loss"], rel=1e-4)


def test_distributed_settings_are_checked(tmp_path, tiny_fresh):
    model, tok = tiny_fresh
    with pytest.raises(ConfigError, match="--processes"):
        train(TrainConfig(data="x", out=str(tmp_path / "o"), processes=0))
    with pytest.raises(ConfigError, match="model="):
        train(
            TrainConfig(data="x", out=str(tmp_path / "o"), processes=2), model=model, tokenizer=tok
        )
    with pytest.raises(ConfigError, match="accelerate config"):
        train(
            TrainConfig(
                data="x", out=str(tmp_path / "o"), accelerate_config=str(tmp_path / "no.yaml")
            )
        )


def test_python_m_ragtune_cli_is_the_cli_with_the_launch_options():
    # what `accelerate launch ... -m ragtune.cli train ...` runs in each process
    res = subprocess.run(
        [sys.executable, "-m", "ragtune.cli", "train", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr
    assert "--processes" in res.stdout and "--accelerate-config" in res.stdout

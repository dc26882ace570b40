"""Devices and precision: one resolution (ragtune.llm.device.resolve) for every job, checked
with torch's CUDA/MPS queries monkeypatched; the jobs themselves on CPU in fp32, bf16, fp16."""

import pytest
import torch

from ragtune.errors import ConfigError
from ragtune.llm.device import resolve

CPU = torch.device("cpu")


@pytest.fixture
def gpus(monkeypatch):
    """Pretend torch sees `n` CUDA GPUs, with or without native bf16."""

    def set_(n: int = 1, bf16: bool = True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)

    monkeypatch.delenv("LOCAL_RANK", raising=False)
    return set_


def test_auto_on_this_cpu_machine_is_cpu_fp32():
    assert resolve() == (CPU, torch.float32)
    assert resolve("cpu", "bf16") == (CPU, torch.bfloat16)
    assert resolve("CPU", "fp16") == (CPU, torch.float16)
    assert resolve("cpu", "float32") == (CPU, torch.float32)  # the older spelling still works
    assert resolve("cpu", "bfloat16") == (CPU, torch.bfloat16)


def test_auto_takes_the_gpu_and_bf16_where_it_has_it(gpus, monkeypatch):
    gpus(2, bf16=True)
    assert resolve("auto", "auto") == (torch.device("cuda"), torch.bfloat16)
    assert resolve("cuda:1", "fp16") == (torch.device("cuda", 1), torch.float16)
    assert resolve("cuda", "fp32") == (torch.device("cuda"), torch.float32)
    assert resolve("cpu", "auto") == (CPU, torch.float32)  # the CPU stays fp32 under auto
    monkeypatch.setenv("LOCAL_RANK", "1")  # one process per GPU (accelerate launch, torchrun)
    assert resolve("auto")[0] == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"device='cuda:2'.*2 CUDA device.*cuda:0 \.\.\. cuda:1"):
        resolve("cuda:2")


def test_a_gpu_without_native_bf16_gets_fp32_under_auto_and_an_error_for_bf16(gpus):
    gpus(1, bf16=False)
    assert resolve("auto", "auto") == (torch.device("cuda"), torch.float32)
    assert resolve("auto", "fp16")[1] == torch.float16
    with pytest.raises(ConfigError, match=r"dtype='bf16'.*--dtype fp16"):
        resolve("cuda", "bf16")


def test_mps_when_there_is_no_cuda(gpus, monkeypatch):
    gpus(0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve() == (torch.device("mps"), torch.float32)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve() == (CPU, torch.float32)
    with pytest.raises(ConfigError, match=r"device='mps'.*--device cpu"):
        resolve("mps")


def test_errors_name_the_field_and_the_fix():
    with pytest.raises(ConfigError, match=r"device='cuda' \(--device\): no CUDA.*--device cpu"):
        resolve("cuda")  # this machine has none
    with pytest.raises(ConfigError, match=r"device='gpu'.*auto, cpu, cuda, cuda:N or mps"):
        resolve("gpu")
    with pytest.raises(ConfigError, match=r"dtype='int8'.*auto, fp32, bf16 or fp16"):
        resolve("cpu", "int8")


def test_model_args_carry_device_and_dtype_to_local_models_only(tiny_model):
    from ragtune.llm.args import ModelArgs
    from ragtune.llm.spec import load_lm

    lm = ModelArgs(model=str(tiny_model), device="cpu", dtype="bf16").load_lm()
    assert lm.device == CPU and lm.dtype == torch.bfloat16
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    # an endpoint ignores them (LOCAL_ONLY), so one config serves both kinds of model
    remote = load_lm("openai:m@http://127.0.0.1:9/v1", device="cuda:3", dtype="fp16")
    assert not remote.local
    # a wrong setting fails before the model loads
    with pytest.raises(ConfigError, match="--device"):
        ModelArgs(model=str(tiny_model), device="cuda").load_lm()


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_local_backend_generates_scores_and_streams_in_each_dtype(tiny_model, dtype):
    from ragtune.llm.local import TransformersLM

    lm = TransformersLM(tiny_model, device="cpu", dtype=dtype, threads=1)
    want = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    assert {p.dtype for p in lm.model.parameters()} == {want}
    assert lm.model.device == CPU
    msgs = [{"role": "user", "content": "What is the answer?"}]
    [c] = lm.generate([msgs], max_tokens=6)
    assert c.completion_tokens > 0
    s = lm.score(msgs, ["42", "The quick brown fox"])
    assert all(v < 0 and v == v for v in s)  # finite log-probabilities (not NaN)
    assert "".join(lm.stream(msgs, max_tokens=6)).strip() == c.text
    if dtype != "fp32":  # the same model in fp32 ranks the continuations the same way
        ref = TransformersLM(tiny_model, device="cpu", dtype="fp32").score(msgs, ["42", "fox"])
        got = lm.score(msgs, ["42", "fox"])
        assert (ref[0] > ref[1]) == (got[0] > got[1])


def test_gguf_is_converted_once_and_loaded_in_the_dtype_asked(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from ragtune.llm.local import TransformersLM
    from ragtune.testing import make_tiny_gguf

    monkeypatch.setenv("RAGTUNE_CACHE", str(tmp_path / "cache"))
    gguf = make_tiny_gguf(tmp_path / "tiny.gguf")
    fp32 = TransformersLM(gguf, device="cpu", dtype="fp32")
    bf16 = TransformersLM(gguf, device="cpu", dtype="bf16")
    [entry] = (tmp_path / "cache" / "models").iterdir()  # one cache entry serves both dtypes
    assert fp32.path == bf16.path == entry
    cached = load_file(entry / "model.safetensors")
    assert {v.dtype for v in cached.values()} == {torch.float32}  # the exact dequantisation
    a = dict(fp32.model.named_parameters())
    b = dict(bf16.model.named_parameters())
    assert b.keys() == a.keys() and {p.dtype for p in b.values()} == {torch.bfloat16}
    assert all(torch.equal(b[k], a[k].to(torch.bfloat16)) for k in a)  # rounded once
    msgs = [[{"role": "user", "content": "hello"}]]
    assert bf16.generate(msgs, max_tokens=4)[0].completion_tokens > 0


def test_embedder_runs_where_it_is_told(glimmer_index):
    from ragtune.retrieval.dense import Embedder
    from ragtune.retrieval.index import Index

    emb = Embedder(device="cpu")
    assert emb.device == CPU and emb.model.device == CPU
    v = emb.encode(["snapshot compression", "leases"])
    assert v.shape == (2, emb.dim) and v.dtype.name == "float32"
    assert Embedder().device == CPU  # auto, on this machine
    with pytest.raises(ConfigError, match="--device"):
        Embedder(device="cuda")
    idx = Index.load(glimmer_index.path, device="cpu")  # the query embedder of an index
    assert idx.search("snapshot compression", k=2, method="dense").ids.shape == (1, 2)
    assert idx._embedder.device == CPU


def test_ask_and_serve_take_device_and_dtype_from_model_args(glimmer_index, tiny_model):
    import httpx

    from ragtune.rag.ask import AskConfig, ask
    from ragtune.server.serve import ServeConfig, build_app
    from tests.server.conftest import LiveServer

    common = dict(index=str(glimmer_index.path), model=str(tiny_model), device="cpu", dtype="bf16")
    ans = ask(AskConfig(question="How are snapshots compressed?", max_tokens=8, **common))
    assert ans.documents
    app = build_app(ServeConfig(max_tokens=8, **common))
    lm = app.state.rag.lm
    assert lm.device == CPU and next(lm.model.parameters()).dtype == torch.bfloat16
    assert app.state.rag.index.device == "cpu"
    srv = LiveServer(app).start()
    try:
        r = httpx.post(
            srv.base_url + "/chat/completions",
            json={"messages": [{"role": "user", "content": "snapshots?"}], "max_tokens": 8},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0
    finally:
        srv.stop()

"""onnxruntime-genai running an ONNX export of a model (spec `onnx:...`): another CPU runtime.
On the 2-core development machine it is ~4× slower than the transformers backend when the CPU is
not oversubscribed, faster when it badly is (docs/benchmarks.md): an option, not the default.

    lm = load_lm("onnx:smollm2-135m")     # the bundled model, exported to ONNX once (cached)
    lm = load_lm("onnx:out/raft-merged")  # a model directory (e.g. `ragtune merge`'s), exported once
    lm = load_lm("onnx:DIR")              # a directory onnxruntime-genai's builder wrote

Needs the `onnx` extra (`pip install 'ragtune[onnx]'`: onnxruntime-genai, and onnx + onnx-ir
for the one-time export). The export is onnxruntime-genai's own model builder in fp32 (its int4
rounding on top of the bundled model's Q4_1 weights gave degenerate text), written once under
$RAGTUNE_CACHE/onnx/. Same interface as the transformers backend for generation and streaming
(`generate`, `stream`, `count_tokens`); no `score`, no adapters (merge first), no constrained
decoding (RoG's planner needs the transformers backend).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, ContextTooLong, LLMError
from ragtune.llm.base import LM, Completion, GenerationConfig, Messages, truncate_at_stop


def _require():
    from ragtune.extras import require

    return require("onnxruntime_genai", "the onnx: backend")


def onnx_dir(spec: str) -> Path:
    """The onnxruntime-genai model directory for `spec` (exported once when it names a model)."""
    if spec in ("smollm2-135m", "smollm2", "default"):
        from ragtune.llm.bundled import converted_gguf_dir, smollm2_gguf

        return exported_onnx_dir(converted_gguf_dir(smollm2_gguf()))
    p = Path(spec).expanduser()
    if (p / "genai_config.json").exists():
        return p
    if p.suffix == ".gguf" and p.exists():
        from ragtune.llm.bundled import converted_gguf_dir

        return exported_onnx_dir(converted_gguf_dir(p))
    if (p / "config.json").exists():
        return exported_onnx_dir(p)
    raise ConfigError(
        f"onnx:{spec}: not a model directory (config.json), a GGUF file, an onnxruntime-genai "
        "directory (genai_config.json) or smollm2-135m"
    )


def exported_onnx_dir(model_dir: Path) -> Path:
    """An fp32 ONNX export of a Hugging Face model directory, by onnxruntime-genai's builder,
    cached (staged, so an interrupted export leaves nothing half-written)."""
    from ragtune.llm.bundled import _fingerprint, cache_dir
    from ragtune.store import recover_dir, staged_dir

    model_dir = Path(model_dir)
    weights = sorted(model_dir.glob("*.safetensors")) or [model_dir / "config.json"]
    out = recover_dir(cache_dir() / "onnx" / f"{model_dir.name}-{_fingerprint(weights[0])}")
    if (out / "genai_config.json").exists():
        return out
    _require()
    from ragtune.extras import require

    require("onnx_ir", "exporting a model to ONNX")  # the builder's own imports
    with staged_dir(out, marker="genai_config.json", what="ONNX model") as tmp:
        cmd = [
            sys.executable, "-m", "onnxruntime_genai.models.builder",
            "-m", str(model_dir), "-i", str(model_dir), "-o", str(tmp),
            "-p", "fp32", "-e", "cpu", "-c", str(tmp / ".cache"),
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        run = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if run.returncode != 0 or not (tmp / "genai_config.json").exists():
            raise ConfigError(
                f"exporting {model_dir} to ONNX failed (onnxruntime-genai's builder: "
                f"{(run.stderr or run.stdout).strip()[-600:]}); onnx: covers the architectures "
                "that builder knows (Llama, Qwen, Mistral, Phi, Gemma)"
            )
        cache = tmp / ".cache"
        if cache.exists():
            import shutil

            shutil.rmtree(cache)
    return out


class OnnxLM(LM):
    """onnxruntime-genai generation; see the module docstring."""

    local = can_stream = can_prefill = True

    def __init__(self, spec: str, *, threads: int | None = None, adapter: str | None = None, **_):
        super().__init__()
        if adapter:
            raise ConfigError(
                "onnx: runs a whole model, not base + adapter: fold the adapter in first "
                "(`ragtune merge --adapter DIR --out MERGED`), then --model onnx:MERGED"
            )
        og = _require()
        from transformers import AutoTokenizer

        self.path = onnx_dir(spec)
        self.name = f"onnx:{spec}"
        config = og.Config(str(self.path))
        if threads:  # onnxruntime's own intra-op pool (torch's setting does not reach it)
            opts = {"intra_op_num_threads": int(threads)}
            config.overlay(json.dumps({"model": {"decoder": {"session_options": opts}}}))
        self.og = og
        self.model = og.Model(config)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        genai = json.loads((self.path / "genai_config.json").read_text())
        self.context_window = int(genai.get("model", {}).get("context_length") or 2048)
        tok = self.tokenizer
        ends = {tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")}
        eos = genai.get("model", {}).get("eos_token_id")
        ends.update(eos if isinstance(eos, list) else [eos])
        self.end_ids = {int(t) for t in ends if isinstance(t, int) and t >= 0}

    def render(self, messages: Messages) -> str:
        if messages and messages[-1]["role"] == "assistant":  # a prefill: continue its text
            return self.render(messages[:-1]) + messages[-1]["content"]
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _generate(self, batch: list[Messages], cfg: GenerationConfig) -> list[Completion]:
        out = []
        for messages in batch:
            pieces = list(self._decode(messages, cfg))
            out.append(self._last)
            del pieces
        return out

    def stream(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        cfg = GenerationConfig(max_tokens, temperature, top_p, list(stop or []), seed)
        yield from self._decode(messages, cfg)
        self.usage.add(self._last)

    def _decode(self, messages: Messages, cfg: GenerationConfig) -> Iterator[str]:
        """Generate token by token, yielding the text that is certain (stop strings held back);
        the Completion is left in `self._last` (one generation at a time per instance)."""
        ids = self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]
        if len(ids) + cfg.max_tokens > self.context_window:
            raise ContextTooLong(
                f"prompt of {len(ids)} tokens + max_tokens {cfg.max_tokens} exceeds the model's "
                f"{self.context_window}-token window; retrieve fewer documents (-k) or lower "
                "max_tokens"
            )
        og = self.og
        params = og.GeneratorParams(self.model)
        search: dict[str, Any] = {"max_length": len(ids) + cfg.max_tokens}
        if cfg.temperature > 0:
            search.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
            if cfg.seed is not None:
                search["random_seed"] = int(cfg.seed)
        else:
            search["do_sample"] = False
        params.set_search_options(**search)
        try:
            gen = og.Generator(self.model, params)
            gen.append_tokens(ids)
        except Exception as e:  # onnxruntime's errors are plain RuntimeErrors
            raise LLMError(f"onnxruntime-genai could not start generating: {e}") from e
        tokens: list[int] = []
        sent = 0
        cut = finished = False
        while not gen.is_done() and len(tokens) < cfg.max_tokens:
            gen.generate_next_token()
            tok = int(gen.get_next_tokens()[0])
            if tok in self.end_ids:
                finished = True
                break
            tokens.append(tok)
            raw = self.tokenizer.decode(tokens, skip_special_tokens=True)
            raw, cut = truncate_at_stop(raw, cfg.stop)
            safe = len(raw) if cut else len(raw.rstrip("\ufffd"))
            if not cut:
                held = raw[:safe]
                safe -= max(
                    (k for s in cfg.stop for k in range(min(len(s) - 1, safe), 0, -1)
                     if held.endswith(s[:k])),
                    default=0,
                )  # fmt: skip
            text = raw[:safe].lstrip()
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
            if cut:
                break
        raw = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, cut2 = truncate_at_stop(raw, cfg.stop)
        text = text.strip()
        if len(text) > sent:
            yield text[sent:]
        long = len(tokens) >= cfg.max_tokens and not (cut or cut2 or finished)
        self._last = Completion(text, len(ids), len(tokens), "length" if long else "stop")

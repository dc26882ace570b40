"""`ragtune export`: a tuned model as a GGUF file (llama.cpp, Ollama, LM Studio) or for vLLM.

ragtune export --adapter out/raft-lora/adapter --out out/raft.gguf               # q8_0
ragtune export --adapter out/raft-lora/adapter --out out/raft.gguf --quant f16
ragtune export --adapter out/raft-lora/adapter --format peft --out out/vllm-lora
"""

from __future__ import annotations

from ragtune.cli.ui import err
from ragtune.train.export import ExportConfig


def run_export(cfg: ExportConfig):
    """Fold the adapter into its base model and write a GGUF (or copy it for vLLM's LoRA)."""
    from rich.console import Console

    from ragtune.train.export import export

    with err.status(f"exporting {cfg.adapter} ({cfg.format})"):
        res = export(cfg)
    out = Console()
    for f in res.files:
        size = f.stat().st_size / 2**20 if f.is_file() else 0
        out.print(
            f"[green]wrote[/] {f}" + (f"  ({size:.1f} MiB)" if size >= 0.1 else ""), highlight=False
        )
    out.print("run it with:", highlight=False)
    for line in res.run:
        out.print(f"  {line}", highlight=False, soft_wrap=True)
    return res

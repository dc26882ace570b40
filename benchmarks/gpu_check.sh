#!/usr/bin/env bash
# GPU check: RAFT-train the bundled SmolLM2-135M on a CUDA machine, report what the GPU path gives.
#
#   bash benchmarks/gpu_check.sh                       # OUT=runs/out/gpu-check, 40 steps a run
#   STEPS=100 BATCH_TOKENS=16384 OUT=/tmp/gc bash benchmarks/gpu_check.sh
#   PY=/opt/cuda-env/bin/python bash benchmarks/gpu_check.sh   # a Python whose torch has CUDA
#   DEVICE=cpu STEPS=2 LIMIT=2 bash benchmarks/gpu_check.sh   # the plumbing, dry, on CPU (no GPU
#                                                              # numbers; how the script is tested)
#
# In order:
#   1. exits at once (status 2) with a clear message unless torch sees a CUDA GPU (the Makefile's
#      torch==2.13.0 is the CPU build: run this with a Python whose torch is a CUDA build, PY=...);
#   2. builds the demo's RAFT data: `ragtune pipeline configs/demo-raft.yaml --until raft` (the
#      fictional API docs indexed, RAFT data from the offline teacher; a rerun skips it);
#   3. RAFT-trains LoRA on it with --device cuda --dtype bf16, gradient checkpointing off, then
#      on (same seed, steps and batches); reports tokens/s and peak GPU memory
#      (torch.cuda.max_memory_allocated: train_summary.json's tokens_per_s, peak_memory_mb);
#   4. where bitsandbytes is installed, a QLoRA run too (--load-in-4bit: NF4 base, bf16 compute);
#   5. with more than one visible GPU, the same training data-parallel on all of them:
#      `accelerate launch --num_processes N -m ragtune.cli train ...` (the multi-process training
#      itself is ragtune.train.distributed's; this only launches it; tokens/s is the global
#      batch's, peak memory rank 0's);
#   6. evaluates base, base+RAG and RAFT (the checkpointing-off adapter) on the test split in
#      bf16 on the GPU: the eval table (results.md).
# Everything lands under $OUT; the report is $OUT/gpu_check.md (also printed).
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-runs/out/gpu-check}
STEPS=${STEPS:-40}
LIMIT=${LIMIT:-12}  # test questions in the eval table
BATCH_TOKENS=${BATCH_TOKENS:-8192}
DEVICE=${DEVICE:-cuda}
ACCELERATE=${ACCELERATE:-$(dirname "$PY")/accelerate}  # the launcher of PY's environment
[ -x "$ACCELERATE" ] || ACCELERATE=accelerate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# -- 1. a CUDA GPU, or stop here ---------------------------------------------------------
if [ "$DEVICE" = cpu ]; then
    N=1
    GPU="CPU (DEVICE=cpu: a dry run, no GPU numbers)"
else
    if ! "$PY" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    build = torch.version.cuda or "none: a CPU-only build"
    sys.exit(
        f"gpu_check: no CUDA GPU visible to torch {torch.__version__} (CUDA {build}); run this "
        "on a machine with an NVIDIA GPU, with a Python whose torch is a CUDA build (PY=...)"
    )
PY
    then
        exit 2
    fi
    N=$("$PY" -c "import torch; print(torch.cuda.device_count())")
    GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0))")
fi
echo "gpu_check: $N x $GPU; torch $("$PY" -c 'import torch; print(torch.__version__)')"
RT=("$PY" -m ragtune.cli)

# -- 2. the demo's RAFT data ----------------------------------------------------------------
"${RT[@]}" pipeline configs/demo-raft.yaml --until raft
RAFT=runs/out/demo/raft/raft  # `out:` of configs/demo-raft.yaml, stage raft
mkdir -p "$OUT"

# -- 3. training: bf16 on the GPU, gradient checkpointing off then on -----------------------
train() {  # NAME, then extra flags
    local name=$1
    shift
    rm -rf "${OUT:?}/$name"  # a fresh run each time (train resumes from what it finds)
    "${RT[@]}" train --data "$RAFT" --out "$OUT/$name" --device "$DEVICE" --dtype bf16 \
        --max-steps "$STEPS" --batch-tokens "$BATCH_TOKENS" --save-every 0 "$@"
}
train gc-off --no-gradient-checkpointing
train gc-on --gradient-checkpointing
runs=(gc-off gc-on)

# -- 4. QLoRA, where bitsandbytes is installed ----------------------------------------------
if [ "$DEVICE" != cpu ] && "$PY" -c "import bitsandbytes" 2>/dev/null; then
    train qlora --load-in-4bit --no-gradient-checkpointing
    runs+=(qlora)
fi

# -- 5. data-parallel on all GPUs (only with more than one) ---------------------------------
if [ "$N" -gt 1 ]; then
    rm -rf "${OUT:?}/ddp"
    "$ACCELERATE" launch --num_processes "$N" --multi_gpu -m ragtune.cli train --data "$RAFT" \
        --out "$OUT/ddp" --device "$DEVICE" --dtype bf16 --max-steps "$STEPS" \
        --batch-tokens "$BATCH_TOKENS" --save-every 0
    runs+=(ddp)
fi

# -- 6. the eval table ----------------------------------------------------------------------
rm -rf "${OUT:?}/eval"
"${RT[@]}" eval --data "$RAFT" --raft-adapter "$OUT/gc-off/adapter" --configs base,base+rag,raft \
    --sweep "" --k 4 --limit "$LIMIT" --max-tokens 96 --device "$DEVICE" --dtype bf16 --out "$OUT/eval"

# -- the report -----------------------------------------------------------------------------
"$PY" - "$OUT" "$GPU" "$N" "$DEVICE" "${runs[@]}" <<'PY'
import json
import sys
from pathlib import Path

out, gpu, n, device, runs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
lines = [
    f"GPU check on {n} x {gpu}: bundled SmolLM2-135M, LoRA r=16 on all linear layers, "
    "the demo's RAFT data",
    "",
    "| run | processes | device | dtype | gradient checkpointing | steps | trained tokens/s "
    "| peak GPU memory (MiB) | first -> last loss |",
    "|---|---|---|---|---|---|---|---|---|",
]
for r in runs:
    s = json.loads((out / r / "train_summary.json").read_text())
    c = s["config"]
    lines.append(
        f"| {r} | {s.get('processes', 1)} | {s['device']} | "
        f"{s['dtype']}{' (4-bit NF4 base)' if c.get('load_in_4bit') else ''} | "
        f"{'on' if c['gradient_checkpointing'] else 'off'} | {s['steps']} | "
        f"{s['tokens_per_s']:.0f} | {s['peak_memory_mb']} | "
        f"{s['first_loss']:.3f} -> {s['last_loss']:.3f} |"
    )
lines += ["", f"Eval (base, base+RAG, RAFT adapter gc-off; bf16 on {device}):", ""]
lines.append((out / "eval" / "results.md").read_text())
report = "\n".join(lines) + "\n"
(out / "gpu_check.md").write_text(report)
print(report)
PY

"""benchmarks/gpu_check.sh stops at once, and says why, on a machine without a CUDA GPU."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_fails_fast_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the check would run for real")
    t0 = time.monotonic()
    r = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
        env={**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no CUDA GPU visible to torch" in r.stderr and "PY=" in r.stderr
    assert time.monotonic() - t0 < 60  # before any data is built or model loaded
    assert not (tmp_path / "out").exists()

"""On-disk stores (an index, a KG): versioned `params.json`, atomic directory and file writes.

A store is a plain directory built into a temporary sibling and renamed into place, so a crash
never leaves a half-written store where a good one was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError


def read_params(path: Path, fmt: str, version: int, what: str, rebuild: str) -> dict[str, Any]:
    """`path/params.json`, checked to be `fmt` at `version`; `rebuild` is the command to fix it."""
    pfile = path / "params.json"
    if not pfile.exists():
        raise ConfigError(
            f"{path} is not a ragtune {what} (no params.json); build one with {rebuild}"
        )
    params = json.loads(pfile.read_text(encoding="utf-8"))
    if params.get("format") != fmt or params.get("version") != version:
        raise ConfigError(
            f"{path} is {what} format {params.get('format')!r} version {params.get('version')!r}, "
            f"but this ragtune reads {fmt!r} version {version}; rebuild it with {rebuild}"
        )
    return params


def replace_dir(tmp: Path, out: Path, what: str) -> None:
    """Move the finished `tmp` to `out`, replacing an existing store only after success."""
    if out.exists():
        if not (out / "params.json").exists() and any(out.iterdir()):
            raise ConfigError(
                f"{out} exists and is not a ragtune {what}; choose another output directory or "
                "remove it"
            )
        old = out.with_name(out.name + f".old-{int(time.time() * 1000)}")
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` via a fsynced temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of an append-only JSON Lines checkpoint log (empty when absent).

    A last line cut by a kill has no newline: it is dropped, and cut from the file too, so the
    next append starts on a fresh line.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    good_end = data.rfind(b"\n") + 1
    if good_end < len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return [json.loads(line) for line in data[:good_end].splitlines() if line.strip()]


def check_same_run(out: Path, settings: dict[str, Any], outputs: str) -> None:
    """Refuse to resume into `out` when its ``run.json`` holds other `settings` and files matching
    the glob `outputs` exist; then record `settings` there."""
    f = out / "run.json"
    if f.exists():
        old = json.loads(f.read_text(encoding="utf-8"))
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        if diff and any(out.glob(outputs)):
            raise ConfigError(
                f"{out} holds results made with other settings ({', '.join(diff)}); "
                "use another --out, or delete it to start over"
            )
    atomic_write(f, json.dumps(settings, indent=2) + "\n")

"""On-disk stores (an index, a KG): versioned `params.json`, atomic directory and file writes.

Every directory ragtune writes (an index, a KG, RAFT's hf/, adapters, checkpoints, merged and
cached models) goes through `staged_dir`: built in a temporary sibling and swapped into place,
so a crash never leaves a half-written store, or none, where a good one was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


# Names of what a writer leaves beside `out` while it works: `.NAME.tmp-PID-*` (being built),
# `.NAME.old-PID-NS` (the previous store, moved aside for the swap), `.NAME.del-PID-NS` (being
# deleted). The pid tells a dead writer's leftovers from a live one's.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|del)-(?P<pid>\d+)-(?P<tag>[0-9a-z_]+)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _fsync_tree(root: Path) -> None:
    # Without this a power cut after the rename can leave the new directory's files empty.
    for dirpath, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_dir(out: str | Path) -> Path:
    """Undo what a writer killed mid-write left beside `out`; returns `out`.

    When `out` is missing and a dead writer had moved the previous store aside, that store is
    put back (it is whole: it was moved, never written to). Otherwise a dead writer's moved-aside
    copies, temporary and half-deleted directories are removed. A live writer's are left alone.
    Every reader and writer of a store calls this first.
    """
    out = Path(out)
    try:
        siblings = list(out.parent.iterdir())
    except OSError:  # no parent, or one we may not list (a read-only shared store): as it is
        return out
    asides: list[tuple[int, Path]] = []
    for p in siblings:
        m = _LEFTOVER.match(p.name)
        if not m or m["name"] != out.name or _alive(int(m["pid"])):
            continue
        if m["kind"] == "old":
            asides.append((int(m["tag"]) if m["tag"].isdigit() else 0, p))
        else:
            shutil.rmtree(p, ignore_errors=True)
    asides.sort()
    if asides and not out.exists():
        try:
            asides.pop()[1].rename(out)  # the newest aside is the last store that was in place
        except OSError:  # another reader restored it first
            pass
    for _, p in asides:
        shutil.rmtree(p, ignore_errors=True)
    return out


def recover_all(parent: str | Path) -> None:
    """`recover_dir` for every directory in `parent` that a killed writer left leftovers of."""
    parent = Path(parent)
    if not parent.is_dir():
        return
    names = {m["name"] for p in parent.iterdir() if (m := _LEFTOVER.match(p.name))}
    for name in sorted(names):
        recover_dir(parent / name)


def remove_dir(path: str | Path) -> None:
    """Delete a directory so that a kill midway never leaves a half-deleted one at `path`."""
    path = Path(path)
    gone = path.with_name(f".{path.name}.del-{os.getpid()}-{time.time_ns()}")
    try:
        path.rename(gone)
    except FileNotFoundError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def _check_ours(out: Path, marker: str | None, what: str) -> None:
    if marker is None or not out.exists():
        return
    if out.is_dir() and ((out / marker).exists() or not any(out.iterdir())):
        return
    raise ConfigError(
        f"{out} exists and is not a ragtune {what} (no {marker}); choose another output "
        "directory or remove it"
    )


@contextmanager
def staged_dir(
    out: str | Path, *, marker: str | None = "params.json", what: str = "store", replace=True
) -> Iterator[Path]:
    """Build a directory in a temporary sibling (yielded) and swap it in at `out` on success.

    The swap moves an existing `out` aside, renames the new one in, then deletes the old, so a
    kill at any step leaves a whole store at `out` or one that `recover_dir` (run first by every
    reader and writer) puts back. On an exception nothing at `out` changes and the temporary
    directory is removed. `marker` is the file that makes an existing `out` a previous output of
    this kind; any other non-empty directory there is refused, never deleted (None: no check).
    `replace=False` is for caches: an `out` another process finished first is kept, ours dropped.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(out)
    _check_ours(out, marker, what)  # before the work, not after it
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if out.exists():
            if not replace:
                return
            _check_ours(out, marker, what)
            old = out.with_name(f".{out.name}.old-{os.getpid()}-{time.time_ns()}")
            out.rename(old)
            tmp.rename(out)
            _fsync_dir(out.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                tmp.rename(out)
            except OSError:
                if replace or not out.exists():
                    raise
            _fsync_dir(out.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a swap


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

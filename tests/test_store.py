"""Atomic directory writes: a process killed at any step leaves the old or the new store."""

import subprocess
import sys
import textwrap

import pytest

from ragtune.errors import ConfigError
from ragtune.store import recover_dir, staged_dir

# Writes "new" over a store holding "old", and kills itself (os._exit: no cleanup runs, as with
# SIGKILL or a power cut) at the chosen step of the swap.
KILLER = textwrap.dedent(
    """
    import os, shutil, sys
    from pathlib import Path
    from ragtune.store import staged_dir

    out, at = Path(sys.argv[1]), sys.argv[2]
    real_rename, real_rmtree = os.rename, shutil.rmtree

    def rename(src, dst, *a, **k):
        if at == "aside" and Path(src) == out:  # before the old is moved aside
            os._exit(9)
        if at == "swap" and Path(dst) == out:  # old aside, new not yet in place
            os._exit(9)
        return real_rename(src, dst, *a, **k)

    def rmtree(path, *a, **k):
        if at == "cleanup" and ".old-" in Path(path).name:  # new in place, old not yet gone
            os._exit(9)
        return real_rmtree(path, *a, **k)

    os.rename, shutil.rmtree = rename, rmtree
    with staged_dir(out) as tmp:
        (tmp / "params.json").write_text("new")
        (tmp / "data.bin").write_bytes(b"x" * 1000)
    """
)


def _old_store(out):
    out.mkdir()
    (out / "params.json").write_text("old")
    (out / "data.bin").write_bytes(b"o" * 1000)


@pytest.mark.parametrize("at, expect", [("aside", "old"), ("swap", "old"), ("cleanup", "new")])
def test_kill_at_each_step_leaves_a_whole_store(tmp_path, at, expect):
    out = tmp_path / "store"
    _old_store(out)
    r = subprocess.run([sys.executable, "-c", KILLER, str(out), at], capture_output=True)
    assert r.returncode == 9, r.stderr.decode()
    # What every reader and writer does first: put back an old store a dead writer moved aside,
    # and sweep a dead writer's temporary directories.
    recover_dir(out)
    assert (out / "params.json").read_text() == expect
    assert len((out / "data.bin").read_bytes()) == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    # and the next write goes through cleanly
    with staged_dir(out) as tmp:
        (tmp / "params.json").write_text("third")
    assert (out / "params.json").read_text() == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_next_writer_restores_before_writing(tmp_path):
    """A writer that fails after a crash has left `out` missing still leaves the old store."""
    out = tmp_path / "store"
    _old_store(out)
    r = subprocess.run([sys.executable, "-c", KILLER, str(out), "swap"], capture_output=True)
    assert r.returncode == 9 and not out.exists()
    with pytest.raises(RuntimeError), staged_dir(out) as tmp:
        (tmp / "params.json").write_text("half")
        raise RuntimeError("build failed")
    assert (out / "params.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_live_writers_leftovers_are_left_alone(tmp_path):
    """Another process's temporary directory (it is still writing) is not swept away."""
    out = tmp_path / "store"
    _old_store(out)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".store.tmp-{live.pid}-abc123"
        busy.mkdir()
        recover_dir(out)
        assert busy.exists()
    finally:
        live.kill()
        live.wait()
    recover_dir(out)
    assert not busy.exists()


def test_refuses_to_replace_a_foreign_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a ragtune index"):
        with staged_dir(out, what="index") as tmp:
            (tmp / "params.json").write_text("{}")
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_keep_existing_discards_the_second_copy(tmp_path):
    """replace=False (a cache): a copy another process finished first wins; ours is dropped."""
    out = tmp_path / "cache"
    with staged_dir(out, marker="config.json", replace=False) as tmp:
        (tmp / "config.json").write_text("ours")
        out.mkdir()
        (out / "config.json").write_text("theirs")
    assert (out / "config.json").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]

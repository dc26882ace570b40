"""Data-parallel training on accelerate: one process per device (or CPU share), one model each.

    ragtune train --data out/raft --out out/lora --processes 2          # re-launches itself
    accelerate launch --multi_gpu --num_processes 2 -m ragtune.cli train --data out/raft --out out/lora
    ragtune train ... --processes 8 --accelerate-config fsdp.yaml       # accelerate's own config

`train()` runs distributed whenever it finds itself inside a launch (`WORLD_SIZE` > 1, set by
`accelerate launch` / `torchrun`); `--processes N` outside one makes the job launch itself
through `accelerate launch` with the same config (`python -m ragtune.train.distributed`,
below) and wait, reporting progress from the log rank 0 writes. On CPU `--multi_gpu` is what
asks accelerate for several processes (torch.distributed.run, gloo); `--cpu` would start one.

What each rank does (see `ragtune.train.trainer.train`):
- The micro-batch order stays the single-process one (a pure function of seed and epoch), and
  each optimiser step takes `grad_accum x processes` consecutive micro-batches of it, rank r
  the r-th of every `processes`. Each rank's loss is scaled by 1/grad_accum and DDP averages
  the gradients over ranks, so N processes with --grad-accum G step exactly as one process
  with --grad-accum N x G (the same global batch: the same losses, up to float summation order).
- The logged loss is the token-weighted mean over the whole global batch (sums all-reduced),
  tokens/s counts every rank's tokens.
- Only rank 0 writes the log, checkpoints, the adapter and the summary; checkpoints have the
  single-process format (DDP keeps the full optimiser state on every rank), so a run resumes
  with any number of processes as long as the global batch is the same.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, DataError, RagtuneError

LAUNCH_DIR = ".launch"  # under the run's --out: the launched config, progress, a child's error


def world_size() -> int:
    """Processes in the launch this process belongs to (1 outside one)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """Whether this process should print and write (rank 0, or not launched at all)."""
    return os.environ.get("RANK", "0") == "0"


def check(cfg, model=None) -> None:
    """The distributed settings of a TrainConfig, before anything is loaded."""
    if cfg.processes < 1:
        raise ConfigError(f"processes={cfg.processes} (--processes): use 1 or more")
    launched = world_size() > 1
    if launched and cfg.processes > 1 and cfg.processes != world_size():
        raise ConfigError(
            f"--processes {cfg.processes} inside a launch of {world_size()} processes "
            "(accelerate launch / torchrun decided the number): drop --processes"
        )
    if cfg.accelerate_config and not Path(cfg.accelerate_config).is_file():
        raise ConfigError(
            f"accelerate_config={cfg.accelerate_config!r} (--accelerate-config) is not a file; "
            "write one with `accelerate config --config_file FILE`"
        )
    if not launched and model is not None and (cfg.processes > 1 or cfg.accelerate_config):
        raise ConfigError(
            "--processes / --accelerate-config load the model in each launched process from "
            "TrainConfig.model: pass its spec there instead of model="
        )


def wants_launch(cfg) -> bool:
    """Whether `train(cfg)` must launch its processes (asked for several, not inside a launch)."""
    return world_size() == 1 and (cfg.processes > 1 or bool(cfg.accelerate_config))


# -- the launching side --------------------------------------------------------------------


def _free_port() -> int:
    # Two runs on one machine must not both take accelerate's default port 29500.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(cfg, spec: Path) -> list[str]:
    """`accelerate launch` running `python -m ragtune.train.distributed SPEC` N times."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if cfg.accelerate_config:
        # the file decides the strategy (DDP, FSDP, DeepSpeed), mixed precision and machines
        cmd += ["--config_file", str(cfg.accelerate_config)]
        if cfg.processes > 1:
            cmd += ["--num_processes", str(cfg.processes)]
    else:
        # --multi_gpu is accelerate's torchrun path, which is also how CPUs get N processes
        # (gloo); ragtune does its own precision handling (--dtype), so accelerate's is off
        cmd += [
            "--multi_gpu",
            "--num_processes",
            str(cfg.processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(_free_port()),
        ]
    return cmd + ["-m", "ragtune.train.distributed", str(spec)]


class _Tail:
    """New records of a jsonl file that may be replaced (a fresh run deletes the old log)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ino, self.pos = self._stat()  # an existing log's old lines are not news

    def _stat(self) -> tuple[int | None, int]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None, 0
        return st.st_ino, st.st_size

    def read(self) -> list[dict]:
        ino, size = self._stat()
        if ino is None:
            return []
        if ino != self.ino or size < self.pos:
            self.ino, self.pos = ino, 0
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.pos)
            data = f.read()
        end = data.rfind("\n") + 1  # a line being written is read next time
        self.pos += len(data[:end].encode("utf-8"))
        return [json.loads(x) for x in data[:end].splitlines() if x.strip()]


def launch(cfg, progress: Callable[[int, int, dict], None] | None = None) -> dict[str, Any]:
    """Run `cfg` in `cfg.processes` processes through accelerate; returns rank 0's summary."""
    from ragtune.extras import require

    require("accelerate", "training on several processes")
    out = Path(cfg.out)
    d = out / LAUNCH_DIR
    d.mkdir(parents=True, exist_ok=True)
    for name in ("error.json", "total.json"):
        (d / name).unlink(missing_ok=True)
    spec = d / "config.json"
    spec.write_text(json.dumps(asdict(cfg), indent=2), encoding="utf-8")
    (out / "train_summary.json").unlink(missing_ok=True)
    tail = _Tail(out / "train_log.jsonl")
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    # the launcher's warnings about defaults it filled in are noise for a launch ragtune built
    env.setdefault("ACCELERATE_LOG_LEVEL", "error")
    proc = subprocess.Popen(launch_command(cfg, spec), env=env)
    interrupted = False

    def report() -> None:
        if progress is None:
            return
        total = 0
        if (d / "total.json").exists():
            try:
                total = json.loads((d / "total.json").read_text())["total_steps"]
            except (OSError, ValueError, KeyError):
                total = 0
        for rec in tail.read():
            if "loss" in rec:
                progress(rec["step"], total, rec)

    while True:
        try:
            rc = proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            report()
        except KeyboardInterrupt:
            # Ctrl-C reached the ranks too (one process group): rank 0 is saving a checkpoint
            interrupted = True
    report()
    err = d / "error.json"
    if err.exists():
        e = json.loads(err.read_text())
        kind = {"ConfigError": ConfigError, "DataError": DataError}.get(e["type"], RagtuneError)
        raise kind(e["message"])
    if interrupted or rc == 130:
        raise KeyboardInterrupt
    if rc != 0:
        raise RagtuneError(
            f"the {cfg.processes} training processes failed (exit status {rc}); their output "
            "is above. Run with --processes 1 to see the error in one process"
        )
    summary = json.loads((out / "train_summary.json").read_text())
    if summary.get("interrupted"):
        raise KeyboardInterrupt
    return summary


# -- the launched side ---------------------------------------------------------------------


class Dist:
    """This process's part in a launch: accelerate's Accelerator and the ragtune rules above."""

    def __init__(self, cpu: bool = False) -> None:
        from ragtune.extras import require

        require("accelerate", "training on several processes")
        from accelerate import Accelerator

        # cpu=True is what makes accelerate join the launch's process group on CPUs (gloo);
        # without it, a machine with no GPU gets N unconnected single processes
        self.acc = Accelerator(cpu=cpu)
        if self.acc.num_processes != world_size():
            raise ConfigError(
                f"accelerate started {self.acc.num_processes} connected process(es) of the "
                f"{world_size()} launched ({self.acc.distributed_type}); launch with "
                "`accelerate launch --multi_gpu --num_processes N` (also on CPUs)"
            )
        self.rank = self.acc.process_index
        self.world = self.acc.num_processes
        self.main = self.acc.is_main_process
        self.device = self.acc.device
        self.wrapped = None

    def mine(self, batches: Iterator[list[int]]) -> list[int]:
        """Of the next `world` micro-batches of the shared order, the one of this rank."""
        got = [next(batches) for _ in range(self.world)]
        return got[self.rank]

    def prepare(self, model, opt):
        """Wrap model and optimiser (DDP, or what --accelerate-config asks for); returns the
        optimiser to step. The loss runs through the wrapper's forward (DDP's hooks need it),
        so the model is wrapped together with ragtune's completion-only loss."""
        import torch

        from ragtune.train.trainer import completion_loss

        class CompletionLoss(torch.nn.Module):
            def __init__(self, model) -> None:
                super().__init__()
                self.model = model

            def forward(self, *args):  # (ids, att, labels, ...): completion_loss's own
                return completion_loss(self.model, *args)

        self.wrapped, opt = self.acc.prepare(CompletionLoss(model), opt)
        return opt

    def completion_loss(self, model, *args):
        """`trainer.completion_loss` through the prepared wrapper (`model` is the one inside)."""
        return self.wrapped(*args)

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks (float64: the logged loss matches one process's)."""
        import torch

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        return [float(x) for x in self.acc.reduce(t, reduction="sum")]

    def write_total(self, out: Path, total_steps: int) -> None:
        """For a launching parent's progress bar: the number of steps (rank 0)."""
        if self.main and (out / LAUNCH_DIR).is_dir():
            (out / LAUNCH_DIR / "total.json").write_text(json.dumps({"total_steps": total_steps}))

    def barrier(self) -> None:
        self.acc.wait_for_everyone()


def _main(argv: list[str]) -> int:
    """`python -m ragtune.train.distributed SPEC.json`: what each launched process runs."""
    from ragtune.train.trainer import TrainConfig, train

    if len(argv) != 1:
        print("usage: python -m ragtune.train.distributed OUT/.launch/config.json", file=sys.stderr)
        return 2
    spec = Path(argv[0])
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        train(TrainConfig(**json.loads(spec.read_text(encoding="utf-8"))))
    except RagtuneError as e:
        if is_main_process():  # every rank fails alike on bad data; one report is enough
            payload = {"type": type(e).__name__, "message": str(e)}
            (spec.parent / "error.json").write_text(json.dumps(payload), encoding="utf-8")
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

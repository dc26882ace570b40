"""Load on `ragtune serve`: concurrent chat requests against a server in a subprocess.

    python benchmarks/serve_load.py                   # 200 DummyLM requests, then 20 on SmolLM2
    python benchmarks/serve_load.py --skip-model      # only the DummyLM phases (seconds)
    python benchmarks/serve_load.py --model-requests 40 --max-tokens 48
    python benchmarks/serve_load.py --distinct        # no two prompts alike (no shared prefill)
    python benchmarks/serve_load.py --skip-dummy --max-batch 20   # the model phases only

The bundled GlimmerDB corpus is indexed into a temporary directory. Each phase starts its own
server (`run_serve` in a subprocess on a free loopback port) and sends every request at once
with httpx's async client:

  dummy          200 chat requests, DummyLM (retrieval + prompt building + HTTP, no model time);
                 server: 4 generation slots, a queue of 256
  dummy, stream  the same, `stream: true` (SSE read to the end)
  dummy, batched the plain phase with --max-batch 8: a batch's questions in one search
  smollm2-135m   20 chat requests on the bundled model (max_tokens 32, 2 torch threads);
                 server: 1 generation slot, a queue of 32 (so all 20 wait their turn)
  smollm2-135m, batched   the same 20 on a server with --max-batch 8 (one slot, rows decoded
                 together, later requests joining between tokens)

The questions are the bundled three, cycled; identical prompts in one admission are prefilled
once by the batched server. `--distinct` appends each request's number to its question, so no
two prompts are alike and every one is prefilled.

Reported: errors (any non-200 or transport error; must be 0, else the exit code is 1), p50/p99
latency of a request (queueing included), throughput (requests / wall time of the phase), the
server's peak RSS (VmHWM from /proc/PID/status; psutil's sampled RSS where /proc is missing), and
the slowest /healthz answer while the phase ran (polled every 0.1 s: the event loop must stay
responsive while models generate in worker threads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LAUNCH = (
    "import json, sys; from ragtune.server.serve import ServeConfig, serve; "
    "serve(ServeConfig(**json.loads(sys.argv[1])))"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`run_serve` in a subprocess; peak RSS from /proc (or psutil samples)."""

    def __init__(self, **cfg) -> None:
        self.port = free_port()
        cfg.update(host="127.0.0.1", port=self.port, log_level="warning")
        env = {**os.environ, "RAGTUNE_API_KEY": ""}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, json.dumps(cfg)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self._rss_max = 0
        self._stop = threading.Event()

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + (self.proc.stderr.read() or "")[-3000:])
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    threading.Thread(target=self._sample, daemon=True).start()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:.0f} s")

    def _sample(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        p = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                self._rss_max = max(self._rss_max, p.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
        return self._rss_max / 2**20

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(
    url: str, questions: list[str], n: int, stream: bool, max_tokens: int, distinct: bool = False
) -> dict:
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    health: list[float] = []
    done = asyncio.Event()

    async with httpx.AsyncClient(
        timeout=httpx.Timeout(1800, connect=30), limits=httpx.Limits(max_connections=n + 8)
    ) as client:

        async def one(i: int) -> None:
            q = questions[i % len(questions)] + (f" (request {i})" if distinct else "")
            body = {
                "model": "x",
                "messages": [{"role": "user", "content": q}],
                "max_tokens": max_tokens,
                "stream": stream,
            }
            t0 = time.perf_counter()
            try:
                if stream:
                    async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
                        text = (await r.aread()).decode()
                        ok = r.status_code == 200 and text.endswith("data: [DONE]\n\n")
                        ok = ok and '"error"' not in text and '"ragtune"' in text
                        status = r.status_code
                else:
                    r = await client.post(url + "/v1/chat/completions", json=body)
                    status = r.status_code
                    ok = status == 200 and "ragtune" in r.json()
            except httpx.HTTPError as e:
                errors.append(type(e).__name__)
                return
            if not ok:
                errors.append(str(status))
                return
            lat.append(time.perf_counter() - t0)

        async def poll_health() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                await client.get(url + "/healthz")
                health.append(time.perf_counter() - t0)
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll_health())
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
        done.set()
        await poller
    return {"lat": lat, "errors": errors, "wall": wall, "health": health}


def pct(xs: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(xs, q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="DummyLM requests per phase")
    ap.add_argument("--model-requests", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=32, help="answer length, model phase")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, model phase")
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--skip-dummy", action="store_true", help="only the model phases")
    ap.add_argument("--max-batch", type=int, default=8, help="the batched phases' --max-batch")
    ap.add_argument("--batch-wait-ms", type=float, default=10.0)
    ap.add_argument("--distinct", action="store_true", help="no two prompts alike")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ragtune.corpus.build import IndexConfig, build_index
    from ragtune.examples import GLIMMERDB, GLIMMERDB_QUESTIONS

    console = Console()
    questions = [json.loads(line)["question"] for line in GLIMMERDB_QUESTIONS.open()]
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    with console.status("indexing the GlimmerDB example"):
        build_index(IndexConfig(paths=[str(GLIMMERDB)], out=str(tmp / "index")))
    phases = [
        ("dummy", dict(model="dummy", max_concurrency=4, max_queue=256), args.requests, False),
        (
            "dummy, stream",
            dict(model="dummy", max_concurrency=4, max_queue=256),
            args.requests,
            True,
        ),
    ]
    batch = dict(max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms)
    phases.append(
        (
            "dummy, batched",
            dict(model="dummy", max_concurrency=4, max_queue=256, **batch),
            args.requests,
            False,
        )
    )
    if args.skip_dummy:
        phases = []
    if not args.skip_model:
        cfg = dict(model="smollm2-135m", threads=args.threads, max_concurrency=1, max_queue=32)
        phases.append(("smollm2-135m", cfg, args.model_requests, False))
        phases.append(("smollm2-135m, batched", {**cfg, **batch}, args.model_requests, False))

    table = Table(
        "phase",
        "requests",
        "slots × batch / queue",
        "errors",
        "p50 s",
        "p99 s",
        "req/s",
        "peak RSS MiB",
        "max /healthz ms",
        title=f"ragtune serve under load ({os.cpu_count()} CPUs)",
    )
    rows, failed, stats = [], False, {}
    for name, cfg, n, stream in phases:
        srv = Server(index=str(tmp / "index"), **cfg)
        try:
            with console.status(f"{name}: starting the server"):
                srv.wait_ready()
            with console.status(f"{name}: {n} concurrent requests"):
                res = asyncio.run(
                    load(srv.url, questions, n, stream, args.max_tokens, args.distinct)
                )
            rss = srv.peak_rss_mib()
        finally:
            srv.stop()
        failed |= bool(res["errors"])
        row = [
            name,
            str(n),
            f"{cfg['max_concurrency']} × {cfg.get('max_batch', 1)} / {cfg['max_queue']}",
            str(len(res["errors"]))
            + (f" ({', '.join(sorted(set(res['errors'])))})" if res["errors"] else ""),
            f"{pct(res['lat'], 50):.2f}",
            f"{pct(res['lat'], 99):.2f}",
            f"{len(res['lat']) / res['wall']:.2f}",
            f"{rss:.0f}",
            f"{max(res['health'], default=0) * 1000:.0f}",
        ]
        rows.append(row)
        table.add_row(*row)
        stats[name] = (len(res["lat"]) / res["wall"], pct(res["lat"], 99))
    console.print(table)
    print("\n| " + " | ".join(c.header for c in table.columns) + " |")
    print("|" + "---|" * len(table.columns))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    # the goal is read off these: batched against one request per slot, same run
    for base in ("dummy", "smollm2-135m"):
        one, batched = stats.get(base), stats.get(f"{base}, batched")
        if one and batched:
            print(
                f"{base}: batched / one-at-a-time throughput {batched[0] / one[0]:.2f}x, "
                f"p99 {batched[1] / one[1]:.2f}x"
            )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

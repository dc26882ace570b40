"""RAFT data building against a teacher with 100 ms latency: the reference's call pattern vs ragtune.

    python benchmarks/raft_build.py                  # 40 API records x 5 questions
    python benchmarks/raft_build.py --records 20 --latency 0.2

Both sides talk to the same FakeOpenAIServer (a real HTTP server on loopback) and build the same
records. (a) reproduces the reference implementation's pattern: 2 worker threads, each taking a
chunk, one call for its questions, then one call per question for its answer, in turn.
(b) is `ragtune raft build`'s Builder: --workers chunks in flight, and a chunk's answers sent
concurrently. The records are checked to be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=40)
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from ragtune.corpus.document import stable_id
    from ragtune.llm.openai import OpenAILM
    from ragtune.raft.build import Builder, RaftConfig, corpus_units
    from ragtune.raft.examples import assemble
    from ragtune.raft.teacher import LLMTeacher
    from ragtune.raft.types import QAItem
    from ragtune.raft.verify import check, final_answer
    from ragtune.testing import fake_teacher_reply
    from ragtune.testing_server import FakeOpenAIServer

    tmp = Path(tempfile.mkdtemp(prefix="raft-bench-"))
    corpus = tmp / "api.jsonl"
    with open(corpus, "w") as f:
        for i in range(args.records):
            f.write(
                json.dumps(
                    {
                        "api_name": f"lib.op_{i}",
                        "api_call": f"lib.op_{i}(x, n={i})",
                        "description": f"Apply operation {i} to x. It returns a Result{i}.",
                        "returns": f"Result{i}",
                    }
                )
                + "\n"
            )

    with FakeOpenAIServer(reply=fake_teacher_reply, latency=args.latency) as srv:
        spec = f"openai:fake@{srv.base_url}"
        cfg = RaftConfig(
            out=str(tmp / "ragtune"),
            teacher=spec,
            questions=args.questions,
            workers=args.workers,
            format=["raw"],
        )
        units, pool, source = corpus_units([str(corpus)], cfg)

        # (a) the reference's pattern, same teacher prompts and assembly
        n0 = len(srv.requests)
        t = time.perf_counter()
        b_ref = Builder(
            RaftConfig(
                out=str(tmp / "ref"), teacher=spec, questions=args.questions, format=["raw"]
            ),
            units,
            pool,
            source,
        )
        # one connection per reference thread, each sending one request at a time
        lm = OpenAILM("fake", srv.base_url, concurrency=2)
        teacher = LLMTeacher(lm)

        def ref_chunk(u):
            qs = teacher.questions(u.chunk, args.questions, u.kind)
            out = []
            for q in qs:
                [cot] = teacher.answers([(q, u.chunk, None)], u.kind)
                if check(cot, [u.chunk]) is None:
                    it = QAItem(stable_id(u.key, q), q, [u.chunk], None, None, None, u.key, u.kind)
                    out.append(
                        assemble(
                            it,
                            cot,
                            final_answer(cot) or "",
                            k=4,
                            p=0.8,
                            picker=b_ref.picker,
                            seed=0,
                        ).to_dict()
                    )
            return out

        with ThreadPoolExecutor(2) as ex:
            ref_rows = [r for rows in ex.map(ref_chunk, units) for r in rows]
        ref_s = time.perf_counter() - t
        ref_calls = len(srv.requests) - n0

        # (b) ragtune
        n0 = len(srv.requests)
        t = time.perf_counter()
        Builder(cfg, units, pool, source).run()
        ours_s = time.perf_counter() - t
        ours_calls = len(srv.requests) - n0

    ours_rows = [
        json.loads(line)
        for s in ("train", "valid", "test")
        for line in (tmp / "ragtune" / "raw" / f"{s}.jsonl").read_text().splitlines()
    ]
    key = lambda r: r["id"]  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if k != "split"}  # noqa: E731
    same = sorted(map(strip, ours_rows), key=key) == sorted(map(strip, ref_rows), key=key)

    t = Table(
        title=f"{args.records} chunks x {args.questions} questions, teacher latency "
        f"{args.latency * 1000:.0f} ms; same records: {same}"
    )
    for c in ("", "wall s", "teacher calls", "records"):
        t.add_column(c)
    t.add_row(
        "reference pattern (2 threads, 1 call per question)",
        f"{ref_s:.2f}",
        str(ref_calls),
        str(len(ref_rows)),
    )
    t.add_row(
        f"ragtune Builder ({args.workers} workers, answers concurrent)",
        f"{ours_s:.2f}",
        str(ours_calls),
        str(len(ours_rows)),
    )
    t.add_row("ratio", f"{ref_s / ours_s:.1f}x faster", "", "")
    Console(width=140).print(t)
    if not same:
        raise SystemExit("records differ between the two builds")


if __name__ == "__main__":
    main()

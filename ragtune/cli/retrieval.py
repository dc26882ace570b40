"""`ragtune retriever train|eval|reembed` and `ragtune reranker train`."""

from __future__ import annotations

import typer
from rich.console import Console

from ragtune.cli.ui import err
from ragtune.config import typer_command
from ragtune.eval.retrieval import RetrieverEvalConfig
from ragtune.retrieval.reembed import ReembedConfig
from ragtune.retrieval.train import RerankerTrainConfig, RetrieverTrainConfig

console = Console()

retriever_app = typer.Typer(
    help="Tune the embedder on RAFT data, score retrievers, re-embed an index.",
    no_args_is_help=True,
)
reranker_app = typer.Typer(
    help="Train a cross-encoder reranker on RAFT data.", no_args_is_help=True
)


def _train(job, cfg, what: str) -> dict:
    from ragtune.cli.ui import job_progress

    with job_progress() as prog:
        task = prog.add_task(f"training the {what}", total=None, info="mining negatives")

        def progress(step: int, total: int, logs: dict) -> None:
            info = f"loss {logs['loss']:.3f}" if "loss" in logs else None
            prog.update(task, completed=step, total=total, **({"info": info} if info else {}))

        s = job(cfg, progress=progress)
    b, a = s["valid_before"], s["valid_after"]
    keys = [k for k in a if k.startswith(("recall@", "mrr@"))] or [
        k for k in a if not k.startswith("base_")
    ]
    change = ", ".join(f"{k} {b.get(k, 0):.3f} → {a[k]:.3f}" for k in keys)
    console.print(
        f"[green]trained[/] the {what} on {s['pairs']} pairs from {s['questions']} questions "
        f"({s['steps']} steps, {s['train_seconds']:.0f} s, {s['pairs_per_s']} pairs/s)"
        + (f"; valid ({s['valid_questions']} questions): {change}" if change else "")
        + f" → {cfg.out}",
        highlight=False,
    )
    return s


def run_retriever_train(cfg: RetrieverTrainConfig) -> dict:
    """Fine-tune the embedder on the RAFT data's (question, oracle) pairs with hard negatives."""
    from ragtune.retrieval.train import train_retriever

    return _train(train_retriever, cfg, "embedder")


def run_reranker_train(cfg: RerankerTrainConfig) -> dict:
    """Train a cross-encoder reranker on the RAFT data's (question, oracle) pairs."""
    from ragtune.retrieval.train import train_reranker

    return _train(train_reranker, cfg, "cross-encoder")


def run_retriever_eval(cfg: RetrieverEvalConfig) -> dict:
    """Recall@k and MRR of BM25, dense, hybrid, a tuned embedder and rerankers."""
    from ragtune.eval.retrieval import evaluate_retrieval, retrieval_table

    with err.status("scoring") as status:
        res = evaluate_retrieval(cfg, progress=lambda label: status.update(f"scoring {label}"))
    console.print(
        f"{res['questions']} {cfg.split} questions, {res['documents']} documents", highlight=False
    )
    print(retrieval_table(res))
    if "candidates_recall" in res:
        c = res["candidates_recall"]
        k = next(x for x in c if x.startswith("recall@"))
        console.print(f"rerankers choose from {c['over']}'s top hits: {k} {c[k]:.3f}")
    return res


def run_reembed(cfg: ReembedConfig):
    """Write the index's dense vectors anew with another embedder (no corpus read)."""
    from ragtune.cli.ui import job_progress
    from ragtune.retrieval.reembed import reembed_index

    with job_progress(transient=True) as prog:
        task = prog.add_task("embedding chunks", total=None, info="")
        idx = reembed_index(cfg, progress=lambda n: prog.advance(task, n))
    console.print(
        f"[green]re-embedded[/] {len(idx.chunks)} chunks with {idx.params['dense']['embedder']} "
        f"→ {idx.path}",
        highlight=False,
    )
    return idx


retriever_app.command("train")(typer_command(RetrieverTrainConfig, run_retriever_train))
retriever_app.command("eval")(typer_command(RetrieverEvalConfig, run_retriever_eval))
retriever_app.command("reembed")(typer_command(ReembedConfig, run_reembed))
reranker_app.command("train")(typer_command(RerankerTrainConfig, run_reranker_train))


def register(app) -> None:
    app.add_typer(retriever_app, name="retriever")
    app.add_typer(reranker_app, name="reranker")

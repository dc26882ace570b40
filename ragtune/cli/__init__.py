"""The `ragtune` command line. Each command is one job dataclass (see ragtune.config).

ragtune index docs/ --out out/index
ragtune search out/index "how do I open a vault?" -k 5
ragtune ask out/index "how do I open a vault?"
"""

from __future__ import annotations

import os
import sys

import typer

from ragtune.errors import RagtuneError

app = typer.Typer(
    name="ragtune",
    help="RAG + fine-tuning toolkit: index, search, ask (and more as it grows).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from ragtune.cli import commands  # noqa: F401  (registers commands on `app`)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a RagtuneError prints its message (no traceback) and exits 2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _register()
    try:
        app(args=argv, standalone_mode=False)
    except RagtuneError as e:
        from rich.console import Console

        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # usage errors from (typer's own copy of) click
        names = {c.__name__ for c in type(e).__mro__}
        if "ClickException" in names:
            e.show()
            sys.exit(e.exit_code)
        if "Exit" in names:
            sys.exit(e.exit_code)
        if "Abort" in names:
            sys.exit(1)
        raise

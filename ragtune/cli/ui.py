"""The one progress-bar layout every long CLI job uses (on stderr, so stdout stays clean)."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True, soft_wrap=True)


def job_progress(transient: bool = False):
    """description | bar | done/total | elapsed | remaining | info (a task field, e.g. loss)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
        transient=transient,
    )

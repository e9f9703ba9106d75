"""Progress of a long task (an import, reconcile): a bar on stderr while a person watches it
in a terminal; elsewhere (a CronJob, a pipe) nothing but the task's JSON log lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# Called with how much more is done (members imported, communities rebuilt).
Advance = Callable[[int], None]


def _unseen(done: int) -> None:
    del done


@contextmanager
def progress(
    what: str, total: int | None = None, console: Console | None = None
) -> Iterator[Advance]:
    """A bar for `what` (a spinner and a count when the total is unknown) if `console`, by
    default stderr, is a terminal."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield _unseen
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.advance(task, done)

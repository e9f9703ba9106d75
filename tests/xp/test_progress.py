"""Progress of the long tasks: a bar when a person watches in a terminal, JSON lines only when
the output goes anywhere else."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from rich.console import Console

from wee5_xp.progress import progress


def test_a_terminal_sees_the_bar_with_what_is_done_of_the_total() -> None:
    screen = io.StringIO()
    with progress("members imported", 3, Console(file=screen, force_terminal=True)) as advance:
        advance(2)
        advance(1)
    assert "members imported" in screen.getvalue()
    assert "3/3" in screen.getvalue()


def test_anything_else_sees_no_bar() -> None:
    piped = io.StringIO()
    with progress("members imported", 3, Console(file=piped, force_terminal=False)) as advance:
        advance(3)
    assert piped.getvalue() == ""


def _import_on(terminal: bool, env: dict[str, str], export: Path) -> tuple[int, str, str]:
    """`import-file` with its stderr on a terminal, or on a pipe; (exit, stdout, stderr)."""
    argv = [sys.executable, "-m", "wee5_xp.tasks", "import-file", "--community", "exp_progress1"]
    if not terminal:
        done = subprocess.run(
            [*argv, str(export)], env=env, capture_output=True, text=True, timeout=120
        )
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    shown = bytearray()

    def watch() -> None:  # read as it is drawn: a full terminal would stop the task
        with contextlib.suppress(OSError):  # the terminal closes with the process
            while chunk := os.read(leader, 65536):
                shown.extend(chunk)

    watcher = threading.Thread(target=watch)
    watcher.start()
    process = subprocess.Popen(
        [*argv, str(export)], env=env, stdout=subprocess.PIPE, stderr=follower, text=True
    )
    os.close(follower)
    stdout, _ = process.communicate(timeout=120)
    watcher.join(timeout=10)
    os.close(leader)
    return process.returncode, stdout, shown.decode(errors="replace")


async def test_an_import_shows_a_bar_in_a_terminal_and_only_json_lines_in_a_pipe(
    database_url: str, test_env: dict[str, str], tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text("user_id,xp\n" + "".join(f"user_{n},{n * 10}\n" for n in range(1, 1501)))
    env = {**os.environ, **test_env, "WEE5_LOG_LEVEL": "INFO"}

    watched = await asyncio.to_thread(_import_on, True, env, export)
    piped = await asyncio.to_thread(_import_on, False, env, export)

    assert watched[0] == 0
    assert "export.csv: members imported" in watched[2]
    assert "1500/1500" in watched[2]
    assert piped[0] == 0
    assert piped[2] == ""
    logged = [line for line in piped[1].splitlines() if line.startswith("{")]
    assert any(json.loads(line)["event"] == "import finished" for line in logged)

"""The log line writer: a loop iteration's lines leave in one write at its end, in order, and
a line written where no loop runs leaves at once."""

from __future__ import annotations

import asyncio
import io

from wee5_kit.logging import Lines


class CountingFile(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_the_lines_of_one_loop_iteration_leave_in_one_write_at_its_end() -> None:
    file = CountingFile()
    lines = Lines(file)
    for n in range(3):
        lines.write(f"line {n}\n")
    assert file.getvalue() == ""  # not yet: the iteration is not over
    await asyncio.sleep(0)
    assert file.getvalue() == "line 0\nline 1\nline 2\n"
    assert file.writes == 1
    lines.write("line 3\n")
    await asyncio.sleep(0)
    assert file.getvalue().endswith("line 2\nline 3\n")
    assert file.writes == 2


def test_without_a_loop_a_line_leaves_at_once_after_what_waits() -> None:
    file = CountingFile()
    lines = Lines(file)
    lines.write("now\n")
    assert file.getvalue() == "now\n"


async def test_a_line_from_another_thread_comes_after_the_loops_waiting_lines() -> None:
    file = CountingFile()
    lines = Lines(file)
    lines.write("from the loop\n")
    await asyncio.to_thread(lines.write, "from a thread\n")
    assert file.getvalue() == "from the loop\nfrom a thread\n"

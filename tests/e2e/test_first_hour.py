"""The README's first hour, run as written: every shell line between `<!-- first-hour:start -->`
and `<!-- first-hour:end -->` in one bash session, in order, against the real processes started
the way `make up` starts them, each answer checked against the `# →` line under it.

The only change made to the lines: the addresses of `make up` (the gateway on 127.0.0.1:8000,
the file endpoint on 127.0.0.1:8010) become this stack's, and the scripts and `make` targets
find the gateway through `WEE5_GATEWAY_PORT`, as they do beside a `make up` with that
variable set. The stack has a database and prefixes of its own, removed by `make reset`.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.support.stack import ROOT, Stack, start_stack, stop_stack

pytestmark = pytest.mark.e2e

START, END = "<!-- first-hour:start -->", "<!-- first-hour:end -->"
EXPECTED = "# → "
SOON = "(soon)"
SOON_SECONDS = 20
GATEWAY, FILES = "http://127.0.0.1:8000", "http://127.0.0.1:8010"


@dataclass
class Step:
    command: str
    expected: str | None = None

    @property
    def soon(self) -> bool:
        return self.expected is not None and self.expected.startswith(SOON)

    def fragments(self) -> list[str]:
        """What the answer must contain, in this order (`…` separates them)."""
        text = (self.expected or "").removeprefix(SOON)
        return [part.strip() for part in text.split("…") if part.strip()]


def first_hour(readme: str) -> list[Step]:
    section = readme.split(START, 1)[1].split(END, 1)[0]
    steps: list[Step] = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        for line in block.splitlines():
            if line.startswith(EXPECTED):
                assert steps, f"an answer before any command: {line}"
                assert steps[-1].expected is None, f"two answers for one command: {line}"
                steps[-1].expected = line.removeprefix(EXPECTED)
            elif line.strip():
                steps.append(Step(line))
    return steps


def answers(output: str, fragments: list[str]) -> bool:
    at = 0
    for fragment in fragments:
        found = output.find(fragment, at)
        if found < 0:
            return False
        at = found + len(fragment)
    return True


class Shell:
    """One bash session: variables set by a line are there for the next ones."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.tmp = tmp
        self.process = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, command: str, n: int) -> tuple[int, str]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        out = self.tmp / f"step-{n}.out"
        self.process.stdin.write(f'{{ {command}\n}} > {out} 2>&1; echo "__done__ $?"\n')
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        while not line.startswith("__done__"):
            assert line, "bash ended"
            line = self.process.stdout.readline()
        return int(line.split()[1]), out.read_text()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def stack(test_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    name = f"firsthour{time.monotonic_ns() % 10**8}"
    database = make_url(test_env["WEE5_DATABASE_URL"]).set(database=f"wee5_test_{name}")
    own = {
        "WEE5_DATABASE_URL": database.render_as_string(hide_password=False),
        "WEE5_REDIS_PREFIX": name,
        "WEE5_EVENT_PREFIX": name,
    }
    stack = start_stack(
        test_env, tmp_path, WEE5_DEMO="1", WEE5_WHOP_WEBHOOK_SECRET="ws_demo", **own
    )
    try:
        yield stack
    finally:
        stop_stack(stack)
        reset = subprocess.run(
            ["make", "-s", "reset"], cwd=ROOT, env=stack.env, capture_output=True, text=True
        )
        assert reset.returncode == 0, reset.stderr


def test_the_readme_first_hour_answers_as_documented(stack: Stack, tmp_path: Path) -> None:
    steps = first_hour((ROOT / "README.md").read_text())
    assert len(steps) >= 20
    assert sum(step.expected is not None for step in steps) >= 15
    local = {GATEWAY: stack.base_url, FILES: stack.env["WEE5_RESOURCES_PUBLIC_URL"]}

    def here(text: str) -> str:
        for documented, actual in local.items():
            text = text.replace(documented, actual)
        return text

    shell = Shell(stack.env, tmp_path)
    try:
        for n, step in enumerate(steps):
            deadline = time.monotonic() + (SOON_SECONDS if step.soon else 0)
            while True:
                status, output = shell.run(here(step.command), n)
                ok = status == 0 and answers(output, [here(f) for f in step.fragments()])
                if ok or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            assert ok, (
                f"README first hour, line {n + 1}: {step.command}\n"
                f"exit {status}, answered:\n{output}\nexpected: {step.expected}"
            )
    finally:
        shell.close()

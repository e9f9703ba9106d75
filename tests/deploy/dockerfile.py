"""The Dockerfile read into its build stages, enough to check the rules of the image."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Logical lines (continuations joined, comments dropped) as keyword and arguments."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    result = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults, and the stages in order."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            match = re.fullmatch(
                r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", instruction.arguments, re.I
            )
            assert match, instruction.arguments
            found.append(Stage(base=match.group(1), name=match.group(2)))
        elif found:
            found[-1].instructions.append(instruction)
        elif instruction.keyword == "ARG":
            name, _, default = instruction.arguments.partition("=")
            args[name] = default
    return args, found


def run_words(stage: Stage) -> list[str]:
    """Every word of every RUN of a stage (mount flags dropped)."""
    words: list[str] = []
    for command in stage.all("RUN"):
        words += [w for w in shlex.split(command) if not w.startswith("--mount=")]
    return words

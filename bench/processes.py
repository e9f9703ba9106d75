"""What the stack's processes hold in memory: `scripts/up.py` and every process below it,
with its resident set size."""

from __future__ import annotations

from pathlib import Path

from tests.support.stack import descendants


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_report(root: int) -> list[tuple[str, float]]:
    """(name, RSS in MB) of each process of the tree under `root`, largest first."""
    rows = []
    for pid in (root, *descendants(root)):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            rss_kb = _rss_kb(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        words = [word.decode(errors="replace") for word in command if word]
        if not words:
            continue
        rows.append((_label(words), rss_kb / 1024))
    return sorted(rows, key=lambda row: -row[1])


def _label(words: list[str]) -> str:
    """`wee5_xp` for `python -m wee5_xp`, `up.py` for the process manager."""
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1]
    return Path(words[-1]).name

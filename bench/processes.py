"""What the stack's processes hold in memory: `scripts/up.py` and every process below it,
with its resident set size (the `/bin/sh -c` wrappers of the process manager left out)."""

from __future__ import annotations

from pathlib import Path


def _parent_of(pid: str) -> int:
    # /proc/<pid>/stat: the parent is the 2nd field after the parenthesised name.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _rss_kb(pid: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _tree(root: int) -> list[str]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[entry.name] = _parent_of(entry.name)
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue  # ended while we looked
    found, frontier = [], {root}
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = {int(pid) for pid in children}
    return [str(root), *found]


def memory_report(root: int) -> list[tuple[str, float]]:
    """(name, RSS in MB) of each process of the tree under `root`, largest first."""
    rows = []
    for pid in _tree(root):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            rss_kb = _rss_kb(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        words = [word.decode(errors="replace") for word in command if word]
        if not words or words[0].endswith("/sh"):
            continue
        rows.append((_label(words), rss_kb / 1024))
    return sorted(rows, key=lambda row: -row[1])


def _label(words: list[str]) -> str:
    """`wee5_xp` for `python -m wee5_xp`, `up.py` for the process manager."""
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1]
    return Path(words[-1]).name

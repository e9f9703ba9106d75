"""What the stack's processes hold in memory: every process of its session (the stack runs
`scripts/up.py` in a session of its own), with its resident set size."""

from __future__ import annotations

from pathlib import Path


def _status(pid: str) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return fields


def _session_of(pid: str) -> int:
    # /proc/<pid>/stat: the session id is the 6th field after the parenthesised name.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[3])


def memory_report(session: int) -> list[str]:
    """`name  RSS MB` of each process of the session, largest first."""
    rows = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if _session_of(entry.name) != session:
                continue
            rss_kb = int(_status(entry.name).get("VmRSS", "0 kB").split()[0])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue  # ended while we looked
        rows.append((rss_kb, _label(command)))
    rows.sort(reverse=True)
    return [f"{label:<24} {rss_kb / 1024:6.1f} MB" for rss_kb, label in rows]


def _label(command: str) -> str:
    """`wee5_xp serve` rather than the interpreter's path."""
    for part in command.split():
        if part.startswith("wee5_") or part.endswith("up.py"):
            return part.rsplit("/", 1)[-1]
    return command[:24]

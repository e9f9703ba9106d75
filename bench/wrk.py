"""wrk, the compiled HTTP load generator of `make bench` (Debian package `wrk`): one run in its
own process, so the load it puts on the stack does not share a Python interpreter with it.

`run` returns requests per second, p50/p99 latency and errors, parsed from wrk's `--latency`
report; a Lua script (bench/lua/) shapes the requests (pre-signed webhooks, unique keys).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).parent / "lua"

_LATENCY = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_REQUESTS = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkRun:
    name: str
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors
    # Answers that were not 2xx/3xx (of `requests`; the rest were acknowledged).
    non_2xx: int = 0

    def line(self, unit: str = "req/s", per_request: int = 1) -> str:
        return (
            f"{self.name:<34} {self.rate * per_request:>9.0f} {unit:<6} p50 {self.p50_ms:6.1f} ms"
            f"   p99 {self.p99_ms:6.1f} ms   errors {self.errors}"
        )


def binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: wrk is missing; `make infra` installs it (Debian package wrk)")
    return found


def run(
    name: str,
    url: str,
    *,
    connections: int,
    seconds: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    script_args: list[str] | None = None,
) -> WrkRun:
    """One wrk run of `seconds` with `connections` open connections on two threads."""
    command = [binary(), "--latency", f"-t{min(connections, 2)}", f"-c{connections}"]
    command += [f"-d{seconds}s", "--timeout", "10s"]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return parse(name, done.stdout)


def parse(name: str, output: str) -> WrkRun:
    latencies = {
        pct: float(value) * _UNIT_MS[unit] for pct, value, unit in _LATENCY.findall(output)
    }
    rate = _RATE.search(output)
    requests = _REQUESTS.search(output)
    if rate is None or requests is None or "50" not in latencies or "99" not in latencies:
        raise SystemExit(f"bench: could not read wrk's output:\n{output}")
    non_2xx = _NON_2XX.search(output)
    sockets = _SOCKET_ERRORS.search(output)
    refused = int(non_2xx.group(1)) if non_2xx else 0
    errors = refused + (sum(int(n) for n in sockets.groups()) if sockets else 0)
    return WrkRun(
        name,
        int(requests.group(1)),
        float(rate.group(1)),
        latencies["50"],
        latencies["99"],
        errors,
        refused,
    )

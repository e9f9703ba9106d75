"""CronJob entry points: `python -m wee5_xp.tasks <job>`. Exits non-zero when the job fails.

Each job is an async function taking the settings, in its own module; this file is only the
table of them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from wee5_kit import logging
from wee5_xp import maintenance
from wee5_xp.config import XpSettings

Job = Callable[[XpSettings], Coroutine[Any, Any, None]]

JOBS: dict[str, Job] = {
    "reconcile": maintenance.reconcile_job,
    "close-streaks": maintenance.close_streaks_job,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wee5_xp.tasks", description=__doc__)
    parser.add_argument("job", choices=sorted(JOBS))
    args = parser.parse_args(argv)
    settings = XpSettings()
    logging.configure("xp-tasks", settings.log_level)
    log = logging.get_logger("wee5.xp.tasks")
    try:
        asyncio.run(JOBS[args.job](settings))
    except Exception:
        log.exception("task failed", job=args.job)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

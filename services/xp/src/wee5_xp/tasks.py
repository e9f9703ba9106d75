"""CronJob entry points: `python -m wee5_xp.tasks <job> [options]`.

Each job exits 0 on success, 1 when it failed (the CronJob shows it), 2 on bad usage or
configuration. Jobs are safe to run twice at once (Postgres advisory locks, idempotent writes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from wee5_kit import logging, sentry
from wee5_xp import imports, maintenance
from wee5_xp.config import XpSettings
from wee5_xp.jobs import Job, TaskContext
from wee5_xp.syncs import forum_sync, mee6_sync, profile_refresh

# One line per job: name -> Job(help, options, run).
JOBS: dict[str, Job] = {
    "import-mee6": Job("import a MEE6 guild's leaderboard", imports.import_mee6_arguments, imports.import_mee6),
    "import-file": Job("import a JSON or CSV export", imports.import_file_arguments, imports.import_file),
    "mee6-sync": Job("turn MEE6 XP growth into points", mee6_sync.mee6_sync_arguments, mee6_sync.mee6_sync),
    "forum-sync": Job("record new Whop forum posts", forum_sync.forum_sync_arguments, forum_sync.forum_sync),
    "profile-refresh": Job("fill members' names and avatars from Whop", profile_refresh.profile_refresh_arguments, profile_refresh.profile_refresh),
    "reconcile": Job("repair the read model from the ledger, rebuild the boards", maintenance.no_arguments, maintenance.reconcile_job),
    "close-streaks": Job("end the streaks of members not active yesterday", maintenance.no_arguments, maintenance.close_streaks_job),
}  # fmt: skip


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m wee5_xp.tasks")
    jobs = parser.add_subparsers(dest="job", required=True, metavar="job")
    for name, job in JOBS.items():
        job.arguments(jobs.add_parser(name, help=job.help, description=job.help))
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, settings: XpSettings) -> int:
    log = logging.get_logger("wee5.xp.tasks")
    try:
        async with TaskContext.open(settings) as ctx:
            return await JOBS[args.job].run(ctx, args)
    except Exception:
        log.exception("task failed", job=args.job)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    settings = XpSettings()
    logging.configure("xp-tasks", settings.log_level, extra=sentry.log_processors())
    return asyncio.run(sentry.reporting_errors("xp-tasks", run(args, settings)))


if __name__ == "__main__":
    sys.exit(main())

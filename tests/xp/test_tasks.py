"""The task registry: `python -m wee5_xp.tasks <job>` knows the CronJobs and refuses others."""

from __future__ import annotations

import pytest

from wee5_xp import tasks


def test_the_registry_holds_exactly_the_seven_xp_jobs() -> None:
    assert {
        "import-mee6",
        "import-file",
        "mee6-sync",
        "forum-sync",
        "profile-refresh",
        "reconcile",
        "close-streaks",
    } == set(tasks.JOBS)


@pytest.mark.parametrize(
    "argv",
    [
        ["no-such-job"],
        [],
        ["import-mee6", "--community", "exp_1"],  # --guild is required
        ["import-file", "--community", "exp_1"],  # the path is required
        ["import-file", "--community", "exp_1", "--source", "carl", "x.csv"],
    ],
)
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        tasks.parse(argv)
    assert exited.value.code == 2
    assert "usage: python -m wee5_xp.tasks" in capsys.readouterr().err


def test_options_reach_the_job() -> None:
    args = tasks.parse(["mee6-sync", "--community", "exp_1", "--guild", "123456789012345678"])
    assert (args.job, args.community, args.guild, args.unlink) == (
        "mee6-sync",
        "exp_1",
        "123456789012345678",
        False,
    )

"""`python -m wee5_billing.tasks billing-checks` as a CronJob runs it: a JSON report and exit 0,
or a non-zero exit when it cannot do its work."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.support.stripe import API_KEY, StripeServer


async def run_task(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wee5_billing.tasks",
        "billing-checks",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_the_task_prints_its_report_and_exits_zero(
    database_url: str, test_env: dict[str, str]
) -> None:
    with StripeServer() as stripe:
        code, output = await run_task(
            {"WEE5_STRIPE_SECRET_KEY": API_KEY, "WEE5_STRIPE_API_BASE": stripe.base_url}
        )
        listed = stripe.calls("GET", "/v1/subscriptions")

    assert code == 0, output
    report = json.loads(output.strip().splitlines()[-1])
    assert report["job"] == "billing-checks"
    assert report["ran"] is True
    assert report["reconciled"] is True
    assert listed[0].params == {"status": "all", "limit": "100"}


async def test_the_task_exits_non_zero_when_it_fails(test_env: dict[str, str]) -> None:
    code, output = await run_task(
        {"WEE5_DATABASE_URL": "postgresql+asyncpg://postgres:postgres@127.0.0.1:1/nowhere"}
    )

    assert code == 1, output
    assert "task failed" in output

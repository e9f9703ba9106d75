"""Error reporting (wee5_kit.sentry): the scrubber on events shaped as the SDK makes them, and
the real SDK in a process of its own (it patches gRPC and the event loop for good) sending to
a local stand-in for Sentry's ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from sentry_sdk.types import Event

from tests.support.observability import sentry_ingest
from wee5_kit.sentry import FILTERED, scrub_event

EMAIL = "alice.member@example.com"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
WEBHOOK_SECRET = "ws_" + "5e" * 32
MESSAGE_TEXT = "meet me at the usual place at nine"


def test_scrubbed_event_keeps_no_secret_token_email_or_message_text() -> None:
    event: Event = {
        "exception": {
            "values": [
                {
                    "type": "ProgrammingError",
                    "value": (
                        f"relation does not exist [SQL: INSERT INTO xp.activities VALUES "
                        f"($1, $2)] [parameters: ('{EMAIL}', '{MESSAGE_TEXT}')] "
                        "(Background on this error at: https://sqlalche.me/e/20/f405)"
                    ),
                }
            ]
        },
        "request": {
            "url": f"http://gateway/api/v1/communities/exp_abc/members?token={JWT}",
            "method": "POST",
            "query_string": f"token={JWT}",
            "headers": {
                "Authorization": f"Bearer {JWT}",
                "Cookie": f"wee5_refresh={JWT}",
                "webhook-signature": "v1,abc",
                "x-whop-user-token": JWT,
                "User-Agent": "tests",
                "X-Request-ID": "req-7",
            },
            "cookies": {"wee5_refresh": JWT},
            "data": {"email": EMAIL, "password": "hunter2", "content": MESSAGE_TEXT},
        },
        "user": {"id": "acct-1", "email": EMAIL, "ip_address": "10.1.2.3"},
        "extra": {"content": MESSAGE_TEXT, "settings": f"secret {WEBHOOK_SECRET}"},
        "breadcrumbs": {
            "values": [
                {"message": f"login for {EMAIL}", "data": {"text": MESSAGE_TEXT}},
                {"message": f"GET postgresql://wee5:pa55word@db:5432/wee5 with Bearer {JWT}"},
                {
                    "type": "http",
                    "data": {"url": "https://api.whop.com/x", "http.query": "k=v1,abc"},
                },
            ]
        },
        "tags": {"request_id": "req-7"},
    }

    scrubbed = json.dumps(scrub_event(event))

    for secret in (EMAIL, JWT, WEBHOOK_SECRET, MESSAGE_TEXT, "hunter2", "pa55word", "v1,abc"):
        assert secret not in scrubbed
    kept = json.loads(scrubbed)
    assert kept["exception"]["values"][0]["type"] == "ProgrammingError"
    assert "relation does not exist" in kept["exception"]["values"][0]["value"]
    assert kept["request"]["headers"] == {"User-Agent": "tests", "X-Request-ID": "req-7"}
    assert kept["request"]["url"] == "http://gateway/api/v1/communities/exp_abc/members"
    assert kept["user"] == {"id": "acct-1"}
    assert kept["extra"]["content"] == FILTERED
    assert kept["tags"] == {"request_id": "req-7"}


# A process that fails the way a service does: an exception logged with its traceback
# while serving a request of a community (wee5_kit.grpc's "rpc failed").
_FAILING_PROCESS = textwrap.dedent(
    f"""
    import asyncio

    import sentry_sdk

    from wee5_kit import logging, sentry
    from wee5_kit.logging import bound_contextvars, get_logger

    logging.configure("rewards", "INFO", extra=sentry.log_processors())


    async def main():
        sentry.start_error_reporting("rewards")
        with bound_contextvars(request_id="req-42", community_id="exp_tagged"):
            try:
                raise LookupError("no member {EMAIL} (token {JWT})")
            except LookupError:
                get_logger("wee5.grpc").exception("rpc failed")
        sentry_sdk.flush(10)
        print("client active:", sentry_sdk.get_client().is_active())


    asyncio.run(main())
    """
)


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WEE5_SENTRY")}
    return subprocess.run(
        [sys.executable, "-c", _FAILING_PROCESS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_logged_exception_reaches_sentry_tagged_and_scrubbed() -> None:
    with sentry_ingest() as ingest:
        done = _run(
            {
                "WEE5_SENTRY_DSN": ingest.dsn,
                "WEE5_ENVIRONMENT": "staging",
                "WEE5_RELEASE": "1.4.2",
            }
        )
        assert done.returncode == 0, done.stderr
        event = ingest.wait_for(lambda e: "exception" in e)

    assert event["environment"] == "staging"
    assert event["release"] == "1.4.2"
    assert event["tags"]["service"] == "rewards"
    assert event["tags"]["request_id"] == "req-42"
    assert event["tags"]["community_id"] == "exp_tagged"
    assert event["exception"]["values"][-1]["type"] == "LookupError"
    raw = b"".join(ingest.raw).decode(errors="replace")
    assert EMAIL not in raw
    assert JWT not in raw
    assert len(ingest.events) == 1


def test_without_a_dsn_nothing_is_sent_and_startup_says_so_once() -> None:
    done = _run({"WEE5_SENTRY_DSN": ""})

    assert done.returncode == 0, done.stderr
    said = [line for line in done.stdout.splitlines() if "error reporting is off" in line]
    assert len(said) == 1
    assert "client active: False" in done.stdout
    assert json.loads(said[0])["event"] == "error reporting is off: WEE5_SENTRY_DSN is not set"

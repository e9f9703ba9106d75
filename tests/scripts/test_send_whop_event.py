"""scripts/send_whop_event.py: Whop's wire format, where it posts, and its exit status."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType

import pytest

from tests.support.stack import ROOT
from tests.support.whop import chat_message_created, membership_event


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


send = _script("send_whop_event")


def _shape(value: object) -> object:
    """The keys at every depth (what the wire format fixes), not the values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__ if isinstance(value, list) else None


def test_a_membership_event_has_the_shape_whop_sends() -> None:
    args = send.parser().parse_args(
        ["--secret", "ws_x", "membership.activated", "--user", "user_1"]
    )
    sent = send.build(args)

    assert _shape(sent) == _shape(membership_event("membership.activated", "user_1", "biz_demo"))
    assert (sent["company_id"], sent["data"]["company"]["id"]) == ("biz_demo", "biz_demo")
    assert (sent["data"]["id"], sent["data"]["status"]) == ("mem_user_1", "active")


def test_a_deactivation_is_canceled_unless_told_otherwise() -> None:
    parse = send.parser().parse_args
    deactivated = send.build(parse(["--secret", "x", "membership.deactivated", "--user", "u"]))
    expired = parse(
        ["--secret", "x", "membership.deactivated", "--user", "u", "--status", "expired"]
    )
    assert deactivated["data"]["status"] == "canceled"
    assert send.build(expired)["data"]["status"] == "expired"


def test_a_chat_message_has_the_shape_whop_sends() -> None:
    args = send.parser().parse_args(
        ["--secret", "x", "chat.message.created", "--community", "demo", "--user", "user_1"]
    )
    sent = send.build(args)
    assert _shape(sent) == _shape(chat_message_created("demo", "user_1"))
    assert sent["data"]["channel"]["experience_id"] == "demo"


@pytest.mark.parametrize(
    "base",
    ["http://h:1", "http://h:1/", "http://h:1/webhooks/whop"],
)
def test_the_url_is_the_gateways_base_or_the_route_itself(base: str) -> None:
    assert send.webhook_url(base) == "http://h:1/webhooks/whop"


def test_send_whop_message_is_the_chat_event_with_the_same_options() -> None:
    message = _script("send_whop_message")
    assert message.event_argv(
        ["--secret", "ws_x", "--community", "demo", "--url=http://h", "--user", "u"]
    ) == [
        "--secret",
        "ws_x",
        "--url=http://h",
        "chat.message.created",
        "--community",
        "demo",
        "--user",
        "u",
    ]


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server answering 404 everywhere but /webhooks/whop; it records the paths."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            paths.append(self.path)
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200 if self.path == "/webhooks/whop" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()


def test_it_posts_to_the_webhook_route_and_exits_non_zero_unless_answered_2xx(
    gateway: tuple[str, list[str]],
) -> None:
    url, paths = gateway
    event = ["membership.activated", "--user", "user_1"]

    assert send.main(["--url", url, "--secret", "ws_x", *event]) == 0
    assert send.main(["--url", f"{url}/elsewhere", "--secret", "ws_x", *event]) == 1
    assert send.main(["--url", "http://127.0.0.1:1", "--secret", "ws_x", *event]) == 1
    assert paths == ["/webhooks/whop", "/elsewhere/webhooks/whop"]

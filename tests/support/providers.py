"""Local HTTP servers speaking third-party APIs exactly as PROVIDERS.md describes them, for
tests of real clients: a stdlib `ThreadingHTTPServer` on a free port in a daemon thread.

Each fake keeps the requests it served and can be told to fail the next calls with given
statuses (e.g. 502, 429) before answering normally.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import free_port

Answer = tuple[int, dict[str, Any], dict[str, str]]
# Status recorded for a call that was made to hang past the client's timeout.
STALL = 0


@dataclass
class Served:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


@dataclass
class FakeProvider:
    """The shared part: request log, injected failures, the server thread."""

    url: str = ""
    requests: list[Served] = field(default_factory=list)
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, status: int, times: int = 1, **headers: str) -> None:
        with self.lock:
            self.failures.extend([(status, headers)] * times)

    def stall_next(self, seconds: float) -> None:
        """The next call answers only after `seconds` (to test the client's timeout)."""
        with self.lock:
            self.failures.append((STALL, {"seconds": str(seconds)}))

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        raise NotImplementedError

    def _serve(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None and failure[0] == STALL:
            with self.lock:
                self.requests.append(Served(path, query, headers, STALL))
            time.sleep(float(failure[1]["seconds"]))
            return STALL, {}, {}  # the client gave up long ago; nothing is sent
        if failure is not None:
            status, extra = failure
            answer: Answer = (status, {"error": "injected failure"}, extra)
        else:
            answer = self.answer(path, query, headers)
        with self.lock:
            self.requests.append(Served(path, query, headers, answer[0]))
        return answer

    @contextmanager
    def running(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
                headers = {key.lower(): value for key, value in self.headers.items()}
                status, body, extra = fake._serve(parts.path, query, headers)
                if status == STALL:
                    return
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in extra.items():
                    self.send_header(key.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self.url
        finally:
            server.shutdown()
            server.server_close()


def mee6_total_for_level(level: int) -> int:
    return sum(5 * n * n + 50 * n + 100 for n in range(level))


def mee6_level(xp: int) -> tuple[int, int, int]:
    """(level, xp into it, xp the level costs) on MEE6's curve."""
    level = 0
    while mee6_total_for_level(level + 1) <= xp:
        level += 1
    start = mee6_total_for_level(level)
    return level, xp - start, mee6_total_for_level(level + 1) - start


@dataclass
class FakeMee6(FakeProvider):
    """`GET /api/plugins/levels/leaderboard/{guild_id}?page=N&limit=L` (pages from 0)."""

    guilds: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)
    private: set[str] = field(default_factory=set)

    def set_player(self, guild_id: str, user_id: str, xp: int, message_count: int = 0) -> None:
        with self.lock:
            self.guilds.setdefault(guild_id, {})[user_id] = (xp, message_count)

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        prefix = "/api/plugins/levels/leaderboard/"
        if not path.startswith(prefix):
            return 404, {"error": {"message": "Not Found"}}, {}
        guild_id = path.removeprefix(prefix)
        if guild_id in self.private:
            return 401, {"error": {"message": "Unauthorized"}, "status_code": 401}, {}
        if guild_id not in self.guilds:
            return 404, {"error": {"message": "Unknown Guild"}, "status_code": 404}, {}
        page, limit = int(query.get("page", 0)), int(query.get("limit", 100))
        if limit > 1000:
            return 400, {"error": {"message": "limit must be at most 1000"}}, {}
        with self.lock:
            ranked = sorted(self.guilds[guild_id].items(), key=lambda item: (-item[1][0], item[0]))
        players = []
        for user_id, (xp, messages) in ranked[page * limit : (page + 1) * limit]:
            level, into, cost = mee6_level(xp)
            players.append(
                {
                    "avatar": uuid.uuid5(uuid.NAMESPACE_OID, user_id).hex,
                    "detailed_xp": [into, cost, xp],
                    "discriminator": "0",
                    "guild_id": guild_id,
                    "id": user_id,
                    "is_monetize_subscriber": False,
                    "level": level,
                    "message_count": messages,
                    "username": f"member{user_id[-4:]}",
                    "xp": xp,
                }
            )
        body = {
            "admin": False,
            "banner_url": None,
            "guild": {
                "allow_join": True,
                "icon": None,
                "id": guild_id,
                "invite_leaderboard": False,
                "leaderboard_url": f"https://mee6.xyz/leaderboard/{guild_id}",
                "name": "Test guild",
                "premium": False,
            },
            "is_member": False,
            "monetize_options": {},
            "page": page,
            "player": None,
            "players": players,
            "role_rewards": [],
            "user_guild_settings": None,
            "xp_per_message": [15, 25],
            "xp_rate": 1.0,
        }
        return 200, body, {}


def _cursor(index: int) -> str:
    return base64.b64encode(f"forum_post:{index}".encode()).decode()


def _index(cursor: str) -> int:
    return int(base64.b64decode(cursor).decode().split(":", 1)[1])


@dataclass
class FakeWhop(FakeProvider):
    """`GET /api/v1/forum_posts?experience_id=…&first=&after=` with a Bearer key; relay-style
    cursors in `page_info`, oldest post first."""

    api_key: str = field(default_factory=lambda: f"apik_{uuid.uuid4().hex}")
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    def add_post(self, experience_id: str, user_id: str, content: str = "my setup") -> str:
        with self.lock:
            posts = self.posts.setdefault(experience_id, [])
            created = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=len(posts))
            stamp = created.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            post_id = f"post_{uuid.uuid4().hex[:16]}"
            posts.append(
                {
                    "id": post_id,
                    "comment_count": 0,
                    "content": content,
                    "created_at": stamp,
                    "is_edited": False,
                    "is_pinned": False,
                    "is_poster_admin": False,
                    "like_count": 0,
                    "parent_id": None,
                    "title": "A post",
                    "updated_at": stamp,
                    "user": {
                        "id": user_id,
                        "name": None,
                        "username": user_id.removeprefix("user_"),
                    },
                    "view_count": 3,
                }
            )
            return post_id

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"type": "unauthorized", "message": "Invalid API key"}}, {}
        if path != "/api/v1/forum_posts":
            return 404, {"error": {"type": "not_found", "message": "Not found"}}, {}
        experience_id = query.get("experience_id")
        if not experience_id:
            return 400, {"error": {"type": "invalid_request", "message": "experience_id"}}, {}
        first = int(query.get("first", 10))
        start = _index(query["after"]) + 1 if "after" in query else 0
        with self.lock:
            posts = list(self.posts.get(experience_id, []))
        page = posts[start : start + first]
        end = start + len(page) - 1
        return (
            200,
            {
                "data": page,
                "page_info": {
                    "end_cursor": _cursor(end) if page else None,
                    "start_cursor": _cursor(start) if page else None,
                    "has_next_page": start + len(page) < len(posts),
                    "has_previous_page": start > 0,
                },
            },
            {},
        )

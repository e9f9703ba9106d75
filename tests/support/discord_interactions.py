"""Discord interactions as Discord sends them to an interactions endpoint: a JSON body signed
with the application's Ed25519 key over timestamp + body (`X-Signature-Ed25519`,
`X-Signature-Timestamp`). A test key pair stands in for the application's."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from nacl.signing import SigningKey

from tests.support.discord_gateway import snowflake

PING = 1
APPLICATION_COMMAND = 2
# Permission bits of `member.permissions`.
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5


@dataclass
class DiscordApplication:
    """The application's signing key; `public_key` is what WEE5_DISCORD_PUBLIC_KEY holds."""

    key: SigningKey = field(default_factory=SigningKey.generate)

    @property
    def public_key(self) -> str:
        return self.key.verify_key.encode().hex()

    def signed(
        self, interaction: dict[str, Any], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one delivery of `interaction`."""
        body = json.dumps(interaction).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(stamp.encode() + body).signature.hex()
        return body, {
            "content-type": "application/json",
            "x-signature-ed25519": signature,
            "x-signature-timestamp": stamp,
        }


def ping() -> dict[str, Any]:
    return {
        "id": snowflake(),
        "application_id": snowflake(),
        "type": PING,
        "token": "t",
        "version": 1,
    }


def command(
    name: str,
    guild_id: str,
    user_id: str,
    *,
    options: dict[str, Any] | None = None,
    permissions: int = 0,
    bots: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction: `/name` with `options` run by `user_id` in
    `guild_id`. A `member` option's user comes in `data.resolved.users`, as Discord sends it,
    marked `bot` when it is one of `bots`."""
    member = (options or {}).get("member")
    users = {}
    if isinstance(member, str) and member:
        users[member] = {"id": member, "username": f"user{member[-4:]}"} | (
            {"bot": True} if member in bots else {}
        )
    return {
        "id": snowflake(),
        "application_id": snowflake(),
        "type": APPLICATION_COMMAND,
        "token": "t",
        "version": 1,
        "guild_id": guild_id,
        "channel_id": snowflake(),
        "member": {
            "user": {"id": user_id, "username": f"user{user_id[-4:]}"},
            "permissions": str(permissions),
        },
        "data": {
            "id": snowflake(),
            "name": name,
            "type": 1,
            "options": [
                {"name": key, "type": 6 if key == "member" else 3, "value": value}
                for key, value in (options or {}).items()
            ],
            **({"resolved": {"users": users}} if users else {}),
        },
    }


def multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """The parts of a multipart/form-data answer by field name: (content type, bytes)."""
    parsed = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert parsed.is_multipart(), content_type
    parts: dict[str, tuple[str, bytes]] = {}
    for part in parsed.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        name = str(part.get_param("name", header="content-disposition"))
        parts[name] = (part.get_content_type(), payload)
    return parts

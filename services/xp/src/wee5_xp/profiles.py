"""Member profiles: how a Whop user appears on boards and cards (name, username, avatar), as
webhook payloads and Whop's users API describe them. Pure code; the SQL is in
`repository/profiles.py`, the background refresh in `syncs/profile_refresh.py`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

# Longer values are cut (names) or dropped (a cut URL is a broken one): a profile only
# decorates an activity and never makes it fail.
MAX_NAME_LENGTH = 200
MAX_AVATAR_URL_LENGTH = 2000


@dataclass(frozen=True)
class ProfileFields:
    """What a source said about a user; None is unknown (never blanks a known value)."""

    display_name: str | None = None
    username: str | None = None
    avatar_url: str | None = None

    @property
    def empty(self) -> bool:
        return self.display_name is None and self.username is None and self.avatar_url is None


@dataclass(frozen=True)
class ProfileUpdate:
    user_id: str
    fields: ProfileFields
    seen_at: datetime


def merge_updates(updates: Sequence[ProfileUpdate]) -> list[ProfileUpdate]:
    """One update per user (a statement may touch a row once): per field, the newest known
    value of the user's updates."""
    merged: dict[str, ProfileUpdate] = {}
    for update in sorted(updates, key=lambda u: u.seen_at):
        before = merged.get(update.user_id)
        if before is None:
            merged[update.user_id] = update
            continue
        old, new = before.fields, update.fields
        fields = ProfileFields(
            new.display_name or old.display_name,
            new.username or old.username,
            new.avatar_url or old.avatar_url,
        )
        merged[update.user_id] = ProfileUpdate(update.user_id, fields, update.seen_at)
    return sorted(merged.values(), key=lambda u: u.user_id)


def described(display_name: str, username: str, avatar_url: str) -> ProfileFields:
    """What a source said, cleaned: empty is unknown, control characters are dropped (Postgres
    text cannot hold NUL, and none of them belongs in a name), names are cut to
    MAX_NAME_LENGTH, an avatar that is not an http(s) URL is ignored (pages render it as an
    image source)."""
    avatar = avatar_url.strip()
    if (
        len(avatar) > MAX_AVATAR_URL_LENGTH
        or not avatar.startswith(("https://", "http://"))
        or _without_controls(avatar) != avatar
    ):
        avatar = ""
    return ProfileFields(
        _without_controls(display_name).strip()[:MAX_NAME_LENGTH] or None,
        _without_controls(username).strip()[:MAX_NAME_LENGTH] or None,
        avatar or None,
    )


def _without_controls(text: str) -> str:
    return text.translate(_CONTROLS)


# C0 controls (NUL included) and DEL, removed from names.
_CONTROLS = {code: None for code in (*range(0x20), 0x7F)}

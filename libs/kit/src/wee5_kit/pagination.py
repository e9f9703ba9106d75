"""Page tokens and pages: one codec for every list a service or the gateway pages through.

A token is the URL-safe base64 of a JSON array of scalars (the keyset or offset where the next
page starts); an aware datetime travels as ISO 8601 and a UUID as text, and come back as such. It is opaque to clients; decoding checks its shape, so a forged or truncated
token is INVALID_ARGUMENT, never a database error. Pages are read with `limit + 1` rows: the
extra row only says whether another page exists.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from wee5_kit.errors import InvalidArgument

T = TypeVar("T")
Scalar = str | int | float | bool | None
Part = Scalar | datetime | uuid.UUID

# Keys end up in SQL parameters: integers must fit a BIGINT, strings stay short.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MAX_TOKEN_CHARS = 1024


class InvalidPageToken(InvalidArgument):
    def __init__(self, name: str = "page token") -> None:
        super().__init__(f"the {name} is not one this API issued; start again without it")


def encode_page_token(*parts: Part) -> str:
    """A token holding `parts` (decode with the same number and kinds of parts)."""
    raw = json.dumps([_plain(part) for part in parts], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(
    token: str, *kinds: type | tuple[type, ...], name: str = "page token"
) -> tuple[Any, ...]:
    """The parts of `token`, each checked against its kind (`int`, `str`, `(str, type(None))`,
    `datetime` for an aware time, `uuid.UUID`); anything else raises `InvalidPageToken`."""
    if len(token) > _MAX_TOKEN_CHARS:
        raise InvalidPageToken(name)
    try:
        parts = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidPageToken(name) from None
    if not isinstance(parts, list) or len(parts) != len(kinds):
        raise InvalidPageToken(name)
    decoded = []
    for part, kind in zip(parts, kinds, strict=True):
        value = _rich(part, kind)
        if value is _INVALID:
            raise InvalidPageToken(name)
        decoded.append(value)
    return tuple(decoded)


_INVALID = object()


def _plain(part: Part) -> Scalar:
    if isinstance(part, datetime):
        if part.tzinfo is None:
            raise ValueError("a page token's time must be aware")
        return part.isoformat()
    if isinstance(part, uuid.UUID):
        return str(part)
    return part


def _rich(part: object, kind: type | tuple[type, ...]) -> object:
    """`part` as `kind`, or _INVALID."""
    if kind is datetime:
        try:
            moment = datetime.fromisoformat(part) if isinstance(part, str) else None
        except ValueError:
            return _INVALID
        return moment if moment is not None and moment.tzinfo is not None else _INVALID
    if kind is uuid.UUID:
        try:
            return uuid.UUID(part) if isinstance(part, str) else _INVALID
        except ValueError:
            return _INVALID
    return part if _is_kind(part, kind) else _INVALID


def _is_kind(part: object, kind: type | tuple[type, ...]) -> bool:
    if isinstance(part, bool) and kind is not bool:
        return False  # JSON true is not the integer 1
    if not isinstance(part, kind):
        return False
    if isinstance(part, int) and not isinstance(part, bool):
        return _INT_MIN <= part <= _INT_MAX
    if isinstance(part, str):
        return "\x00" not in part
    return True


def take_page(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """The first `limit` of `rows` (read with `limit + 1`) and whether more follow."""
    return list(rows[:limit]), len(rows) > limit

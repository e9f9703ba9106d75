"""Protobuf at the edges: enum values <-> the lower-case names the API speaks, and timestamps.

An `EnumCodec` is built from the enum's descriptor, so a value added to a `.proto` file is
known everywhere at once and no service keeps a table of its own: `REWARD_KIND_FREE_DAYS`
of enum `RewardKind` is `"free_days"`, its `*_UNSPECIFIED` zero value has no name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from wee5_kit.errors import InvalidArgument

V = TypeVar("V", bound=int)


class EnumType(Protocol[V]):  # the generated `EnumTypeWrapper` of a protobuf enum
    DESCRIPTOR: Any

    def items(self) -> list[tuple[str, V]]: ...


class UnknownEnumName(InvalidArgument):
    """A name that is not one of the enum's values; the message lists the allowed ones."""

    def __init__(self, what: str, name: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"unknown {what} {name!r}; one of: {', '.join(allowed)}")
        self.allowed = allowed


class EnumCodec(Generic[V]):
    """Enum value <-> name without the enum's common prefix, lower-cased.

    `what` names the thing in error messages ("reward kind"); by default it is the enum's
    name in words (`RewardKind` -> "reward kind").
    """

    def __init__(self, enum: EnumType[V], *, what: str | None = None) -> None:
        descriptor = enum.DESCRIPTOR
        values = list(enum.items())
        zero = next((name for name, value in values if value == 0), None)
        if zero is None or not zero.endswith("_UNSPECIFIED"):
            raise ValueError(f"{descriptor.name} has no *_UNSPECIFIED zero value")
        prefix = zero.removesuffix("UNSPECIFIED")
        self.what = what or _words(descriptor.name)
        self._by_name: dict[str, V] = {
            name.removeprefix(prefix).lower(): value for name, value in values if value != 0
        }
        self._by_value: dict[int, str] = {value: name for name, value in self._by_name.items()}

    @property
    def names(self) -> tuple[str, ...]:
        """The names in declaration order, without the unspecified value."""
        return tuple(self._by_name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def value(self, name: str) -> V:
        """The enum value of `name`; `UnknownEnumName` (INVALID_ARGUMENT) names the allowed."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownEnumName(self.what, name, self.names) from None

    def name(self, value: int) -> str:
        """The name of `value`; the unspecified value or one this build does not know is an
        `InvalidArgument`, since a caller sent it."""
        try:
            return self._by_value[value]
        except KeyError:
            allowed = ", ".join(self.names)
            raise InvalidArgument(f"{self.what} is required; one of: {allowed}") from None

    def name_or_none(self, value: int) -> str | None:
        """The name of `value`, or None for the unspecified (or an unknown) value."""
        return self._by_value.get(value)


def _words(camel: str) -> str:
    return "".join(f" {c.lower()}" if c.isupper() else c for c in camel).strip()


def to_timestamp(moment: datetime) -> Timestamp:
    """A protobuf Timestamp of `moment`; a naive datetime is taken as UTC."""
    stamp = Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return stamp


def optional_timestamp(moment: datetime | None) -> Timestamp | None:
    """For optional message fields: None stays unset."""
    return None if moment is None else to_timestamp(moment)


def from_timestamp(stamp: Timestamp) -> datetime:
    """The aware UTC datetime of `stamp`."""
    return stamp.ToDatetime(tzinfo=UTC)


def timestamp_field(message: Message, field: str) -> datetime | None:
    """The aware UTC datetime of `message.field`, or None when the field is unset."""
    if not message.HasField(field):
        return None
    return from_timestamp(getattr(message, field))

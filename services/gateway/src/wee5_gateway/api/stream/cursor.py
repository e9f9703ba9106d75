"""Where a client is in the live stream: the JetStream sequence it has seen in each context.

It travels as the SSE `id:` and comes back as `Last-Event-ID`, written `xp:123,rewards:45`.
Sequences are the streams' own, so a cursor from one gateway replica resumes on any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from wee5_gateway.core.problems import ProblemError

# The contexts whose events the stream carries, in the order a cursor names them.
CONTEXTS = ("xp", "rewards")

_PART = re.compile(r"([a-z]+):(\d{1,19})")
_MAX_LENGTH = 200


class InvalidCursor(ProblemError):
    status = 400
    slug = "invalid-stream-cursor"
    title = "Last-Event-ID not understood"


def parse_last_event_id(text: str) -> dict[str, int]:
    """The sequences a `Last-Event-ID` names, e.g. `xp:123,rewards:45` → {"xp": 123,
    "rewards": 45}; a context it leaves out is not in the result."""
    if len(text) > _MAX_LENGTH:
        raise InvalidCursor("Last-Event-ID is too long to be a stream cursor")
    parsed: dict[str, int] = {}
    for part in text.strip().split(","):
        match = _PART.fullmatch(part.strip())
        if match is None or match[1] not in CONTEXTS or match[1] in parsed:
            example = ",".join(f"{context}:12" for context in CONTEXTS)
            raise InvalidCursor(
                f"Last-Event-ID must be an `id:` this stream sent, such as `{example}`"
            )
        parsed[match[1]] = int(match[2])
    return parsed


class Cursor:
    """The last stream sequence seen per context (0: nothing of that stream yet)."""

    __slots__ = ("_sequences",)

    def __init__(self, sequences: Mapping[str, int]) -> None:
        self._sequences = {context: sequences.get(context, 0) for context in CONTEXTS}

    def __getitem__(self, context: str) -> int:
        return self._sequences[context]

    def __str__(self) -> str:
        return ",".join(f"{context}:{seq}" for context, seq in self._sequences.items())

    def __repr__(self) -> str:
        return f"Cursor({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cursor) and self._sequences == other._sequences

    __hash__ = None  # type: ignore[assignment]  # mutable

    def advance(self, context: str, sequence: int) -> bool:
        """Moves `context` forward to `sequence`; False when that was already seen."""
        if sequence <= self._sequences[context]:
            return False
        self._sequences[context] = sequence
        return True

    def advance_all(self, positions: Mapping[str, int]) -> bool:
        moved = [self.advance(context, seq) for context, seq in positions.items()]
        return any(moved)

    def behind(self, positions: Mapping[str, int]) -> Iterable[tuple[str, int, int]]:
        """(context, first sequence not seen, last sequence to catch up to) where this cursor
        is behind `positions`."""
        for context in CONTEXTS:
            if self._sequences[context] < positions[context]:
                yield context, self._sequences[context] + 1, positions[context]

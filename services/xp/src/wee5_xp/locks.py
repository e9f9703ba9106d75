"""The names of xp's advisory locks: two runs of a task (or two imports of one community) at
once queue up or step aside instead of doing the same work twice."""

from __future__ import annotations

from wee5_kit.queries import advisory_lock_key


def xp_lock(*parts: str) -> int:
    """The advisory-lock key of a name such as ("import", community_id, "mee6")."""
    return advisory_lock_key("wee5-xp", *parts)

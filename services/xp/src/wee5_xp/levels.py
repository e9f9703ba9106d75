"""Level curves: how much XP each level costs."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_LEVEL = 1000


def mee6_step(n: int) -> int:
    """XP the n-th step (n = 0, 1, 2, …) above the first level costs: MEE6's `5n² + 50n + 100`."""
    return 5 * n * n + 50 * n + 100


@dataclass(frozen=True)
class Progress:
    level: int
    xp_into_level: int
    # XP the current step costs in total; 0 at the maximum level.
    xp_for_next_level: int

    @property
    def ratio(self) -> float:
        if self.xp_for_next_level == 0:
            return 1.0
        return self.xp_into_level / self.xp_for_next_level


@dataclass(frozen=True)
class LevelCurve:
    """`first_level` is the level of a member with 0 XP; each step above costs `step(n)`."""

    first_level: int = 1
    step: Callable[[int], int] = mee6_step
    max_level: int = MAX_LEVEL
    # thresholds[i] = total XP needed to reach first_level + i.
    thresholds: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        totals = [0]
        for n in range(self.max_level - self.first_level):
            totals.append(totals[-1] + self.step(n))
        object.__setattr__(self, "thresholds", tuple(totals))

    def level_for(self, xp: int) -> int:
        return self.first_level + max(0, bisect_right(self.thresholds, xp) - 1)

    def xp_for_level(self, level: int) -> int:
        """Total XP needed to reach `level`."""
        index = min(max(level, self.first_level), self.max_level) - self.first_level
        return self.thresholds[index]

    def progress(self, xp: int) -> Progress:
        level = self.level_for(xp)
        start = self.xp_for_level(level)
        if level >= self.max_level:
            return Progress(level, xp - start, 0)
        return Progress(level, xp - start, self.xp_for_level(level + 1) - start)


DEFAULT_CURVE = LevelCurve(first_level=1)
# Reproduces MEE6's numbers exactly, for communities migrating from it.
MEE6_CURVE = LevelCurve(first_level=0)

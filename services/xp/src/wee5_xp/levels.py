"""Level curves: how much XP each level costs.

A curve is a polynomial in n for the cost of the n-th step (n = 0, 1, 2, …) above its first
level: linear `a·n + b`, quadratic `a·n² + b·n + c` or cubic `a·n³ + b·n² + c·n + d`. The
default is MEE6's quadratic `5n² + 50n + 100` from level 1; the `mee6` preset starts at 0 and
reproduces MEE6's numbers exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

MAX_LEVEL = 1000
SHAPES = {"linear": 2, "quadratic": 3, "cubic": 4}  # shape -> number of coefficients


def mee6_step(n: int) -> int:
    """XP the n-th step (n = 0, 1, 2, …) above the first level costs: MEE6's `5n² + 50n + 100`."""
    return 5 * n * n + 50 * n + 100


def polynomial_step(coefficients: tuple[int, ...]) -> Callable[[int], int]:
    """The step cost `c0·n^k + … + ck` (highest power first)."""

    def step(n: int) -> int:
        cost = 0
        for coefficient in coefficients:
            cost = cost * n + coefficient
        return cost

    return step


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


@dataclass(frozen=True)
class LevelRow:
    level: int
    # XP from the level before to this one; 0 for the curve's first level.
    xp_for_level: int
    # Total XP needed to reach this level.
    total_xp: int


def level_table(curve: LevelCurve, count: int) -> list[LevelRow]:
    """Levels 1..count (up to the curve's maximum), what each costs and the total to reach it:
    the numbers members' levels follow."""
    rows = []
    for level in range(1, min(count, curve.max_level) + 1):
        total = curve.xp_for_level(level)
        before = curve.xp_for_level(level - 1) if level > curve.first_level else total
        rows.append(LevelRow(level, total - before, total))
    return rows


@dataclass(frozen=True)
class CurveSpec:
    """A curve as a community configures it: a preset name, or a shape with coefficients."""

    shape: str = "quadratic"
    coefficients: tuple[int, ...] = (5, 50, 100)
    first_level: int = 1
    max_level: int = MAX_LEVEL
    preset: str | None = "default"

    def curve(self) -> LevelCurve:
        return _curve(self.coefficients, self.first_level, self.max_level)


@lru_cache(maxsize=256)
def _curve(coefficients: tuple[int, ...], first_level: int, max_level: int) -> LevelCurve:
    step = mee6_step if coefficients == (5, 50, 100) else polynomial_step(coefficients)
    return LevelCurve(first_level=first_level, step=step, max_level=max_level)


# name -> (shape, coefficients, first level)
PRESETS: dict[str, tuple[str, tuple[int, ...], int]] = {
    "default": ("quadratic", (5, 50, 100), 1),
    "mee6": ("quadratic", (5, 50, 100), 0),
    # Every level costs 100 more than the one before: 100, 200, 300, …
    "linear": ("linear", (100, 100), 1),
    # Slow at the top: n³ + 5n² + 50n + 100.
    "cubic": ("cubic", (1, 5, 50, 100), 1),
}


def preset(name: str, max_level: int = MAX_LEVEL) -> CurveSpec:
    shape, coefficients, first_level = PRESETS[name]
    return CurveSpec(shape, coefficients, first_level, max_level, name)


DEFAULT_CURVE = LevelCurve(first_level=1)
# Reproduces MEE6's numbers exactly, for communities migrating from it.
MEE6_CURVE = LevelCurve(first_level=0)

"""The level curve: MEE6's step costs, levels starting at 1 (or 0 for the mee6 preset)."""

import pytest

from wee5_xp.levels import DEFAULT_CURVE, MEE6_CURVE, CurveSpec, LevelCurve, mee6_step, preset


def test_new_member_with_20_xp_is_level_1() -> None:
    assert DEFAULT_CURVE.level_for(0) == 1
    assert DEFAULT_CURVE.level_for(20) == 1


@pytest.mark.parametrize(
    ("level", "total_xp", "level_one_xp_short"),
    # Nothing is below the first level: one XP short of level 1 still reads level 1.
    [(1, 0, 1), (2, 100, 1), (3, 255, 2), (5, 770, 4), (11, 4675, 10)],
)
def test_default_curve_totals(level: int, total_xp: int, level_one_xp_short: int) -> None:
    assert DEFAULT_CURVE.xp_for_level(level) == total_xp
    assert DEFAULT_CURVE.level_for(total_xp) == level
    assert DEFAULT_CURVE.level_for(total_xp - 1) == level_one_xp_short


@pytest.mark.parametrize(
    ("level", "total_xp"),
    [(1, 100), (2, 255), (5, 1150), (10, 4675), (46, 213325), (100, 1899250)],
)
def test_mee6_preset_reproduces_mee6_totals(level: int, total_xp: int) -> None:
    assert MEE6_CURVE.xp_for_level(level) == total_xp
    assert MEE6_CURVE.level_for(total_xp) == level
    assert MEE6_CURVE.level_for(total_xp - 1) == level - 1


def test_step_cost_is_mee6_formula() -> None:
    assert [mee6_step(n) for n in range(4)] == [100, 155, 220, 295]


def test_progress_within_a_level() -> None:
    progress = DEFAULT_CURVE.progress(120)
    assert (progress.level, progress.xp_into_level, progress.xp_for_next_level) == (2, 20, 155)
    assert progress.ratio == pytest.approx(20 / 155)


def test_level_is_capped_at_max_level() -> None:
    curve = LevelCurve(first_level=1, max_level=3)
    assert curve.level_for(10**9) == 3
    assert curve.progress(10**9).xp_for_next_level == 0
    assert curve.progress(10**9).ratio == 1.0


@pytest.mark.parametrize(
    ("level", "total_xp"),
    [(2, 100), (11, 4675), (51, 268375), (101, 1899250)],
)
def test_default_curve_reaches_the_documented_totals_and_mee6_is_one_level_lower(
    level: int, total_xp: int
) -> None:
    assert DEFAULT_CURVE.level_for(total_xp) == level
    assert DEFAULT_CURVE.level_for(total_xp - 1) == level - 1
    assert MEE6_CURVE.level_for(total_xp) == level - 1
    assert preset("default").curve().xp_for_level(level) == total_xp
    assert preset("mee6").curve().xp_for_level(level - 1) == total_xp


def test_polynomial_curves_cost_their_formula_per_step() -> None:
    linear = CurveSpec("linear", (100, 100), 1, 50, None).curve()
    cubic = CurveSpec("cubic", (1, 0, 0, 10), 0, 50, None).curve()
    assert [linear.step(n) for n in range(3)] == [100, 200, 300]
    assert linear.xp_for_level(4) == 600
    assert [cubic.step(n) for n in range(3)] == [10, 11, 18]
    assert cubic.level_for(21) == 2


def test_presets_build_the_curves_they_name() -> None:
    assert preset("linear").curve().xp_for_level(3) == 300
    assert preset("cubic").curve().xp_for_level(2) == 100
    assert preset("mee6", max_level=10).curve().level_for(10**9) == 10

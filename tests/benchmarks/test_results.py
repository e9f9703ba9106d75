"""Results over real gRPC: the figures, the 5-answer floor, and the attempts to single someone
out by stacking filters, by grouping, or by comparing a group with the rest."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from tests.benchmarks.conftest import field_violations, pay, results, submit
from wee5.benchmarks.v1 import benchmarks_pb2

if TYPE_CHECKING:
    from wee5.benchmarks.v1.benchmarks_pb2_grpc import BenchmarksServiceAsyncStub as Stub


async def seed(stub: Stub, community: str, people: list[dict[str, Any]], prefix: str = "u") -> None:
    for index, answers in enumerate(people):
        await submit(stub, community, f"{prefix}{index}", answers)


def interleaved(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers of several groups taken in turn, so that no group arrives after a sample that
    would make its first answers outliers (flagged answers do not count until reviewed)."""
    people: list[dict[str, Any]] = []
    for index in range(max(len(group) for group in groups)):
        people += [group[index] for group in groups if index < len(group)]
    return people


def only_cell(reply: benchmarks_pb2.GetResultsResponse) -> benchmarks_pb2.ResultCell:
    [cell] = reply.cells
    return cell


def cells_by_group(
    reply: benchmarks_pb2.GetResultsResponse,
) -> dict[str, benchmarks_pb2.ResultCell]:
    return {cell.group: cell for cell in reply.cells}


async def test_four_answers_give_no_figures(benchmarks: Stub, community: str) -> None:
    await seed(benchmarks, community, [pay(50_000 + 1000 * n) for n in range(4)])
    reply = await results(benchmarks, community)
    cell = only_cell(reply)
    assert reply.below_floor
    assert reply.total_count == 0
    assert cell.below_floor
    assert (cell.count, cell.mean, cell.median, cell.p90) == (0, 0, 0, 0)
    assert not cell.HasField("min")
    assert not cell.HasField("caller_percentile")


async def test_five_answers_give_figures(benchmarks: Stub, community: str) -> None:
    salaries = [40_000, 45_000, 50_000, 60_000, 80_000]
    await seed(benchmarks, community, [pay(s) for s in salaries])
    reply = await results(benchmarks, community, user_id="someone_else")
    cell = only_cell(reply)
    assert not reply.below_floor
    assert reply.total_count == 5
    assert reply.anonymity_floor == 5
    assert not cell.below_floor
    assert cell.count == 5
    assert cell.mean == pytest.approx(statistics.fmean(salaries))
    assert cell.median == 50_000
    # Linear interpolation between order statistics, like percentile_cont.
    assert (cell.p10, cell.p25, cell.p75, cell.p90) == pytest.approx(
        (42_000, 45_000, 60_000, 72_000)
    )
    assert cell.confidence == benchmarks_pb2.CONFIDENCE_LOW
    assert cell.unit == "USD/year"
    # Fewer than 10 answers: the extremes would be one person's salary.
    assert not cell.HasField("min")
    assert not cell.HasField("max")


async def test_a_contributor_needs_five_others_to_see_figures(
    benchmarks: Stub, community: str
) -> None:
    """Whoever answered knows one answer of the cell: with four others, mean × 5 minus their
    own would be the four's total, so they see the figures only from five others."""
    salaries = [40_000, 45_000, 50_000, 60_000, 80_000]
    await seed(benchmarks, community, [pay(s) for s in salaries])
    assert only_cell(await results(benchmarks, community, user_id="u2")).below_floor
    await submit(benchmarks, community, "u5", pay(90_000))
    cell = only_cell(await results(benchmarks, community, user_id="u2"))
    assert not cell.below_floor
    # Two below, itself counted half: (2 + 0.5) / 6.
    assert cell.caller_percentile == 42


async def test_min_and_max_show_from_ten_answers(benchmarks: Stub, community: str) -> None:
    await seed(benchmarks, community, [pay(40_000 + 1000 * n) for n in range(10)])
    cell = only_cell(await results(benchmarks, community))
    assert (cell.min, cell.max) == (40_000, 49_000)


async def test_confidence_grows_with_the_sample(benchmarks: Stub, community: str) -> None:
    await seed(benchmarks, community, [pay(40_000 + 100 * n) for n in range(15)])
    assert only_cell(await results(benchmarks, community)).confidence == (
        benchmarks_pb2.CONFIDENCE_MEDIUM
    )


async def test_caller_percentile_only_for_the_callers_own_valid_answer(
    benchmarks: Stub, community: str
) -> None:
    await seed(benchmarks, community, [pay(10_000 * n) for n in range(1, 11)])
    assert only_cell(await results(benchmarks, community, user_id="u4")).caller_percentile == 45
    stranger = only_cell(await results(benchmarks, community, user_id="nobody"))
    assert not stranger.HasField("caller_percentile")


async def test_stacked_filters_cannot_isolate_one_member(benchmarks: Stub, community: str) -> None:
    """Ten European SDRs, one SDR in North America (the target), six North American AEs."""
    target = pay(123_456, "sdr", "north_america")
    sdrs = [pay(50_000 + 500 * n, "sdr", "europe") for n in range(10)]
    aes = [pay(90_000 + 500 * n, "account_executive", "north_america") for n in range(6)]
    await seed(benchmarks, community, [target, *interleaved(sdrs, aes)])

    all_sdrs = only_cell(await results(benchmarks, community, filters={"role": "sdr"}))
    assert not all_sdrs.below_floor
    assert all_sdrs.count == 11
    # Directly: one person.
    direct = await results(
        benchmarks, community, filters={"role": "sdr", "region": "north_america"}
    )
    # By difference: 11 SDRs minus the 10 in Europe would be the target's salary.
    european = await results(benchmarks, community, filters={"role": "sdr", "region": "europe"})
    # By grouping the SDRs by region, or the Europeans by role.
    by_region = await results(benchmarks, community, filters={"role": "sdr"}, group_by="region")
    by_role = await results(benchmarks, community, filters={"region": "europe"}, group_by="role")
    assert direct.below_floor
    assert only_cell(direct).below_floor
    assert european.below_floor
    assert only_cell(european).below_floor
    assert all(cell.below_floor for cell in by_region.cells)
    assert cells_by_group(by_role)["sdr"].below_floor
    # Nothing any of them shows can be combined into the target's salary.
    for reply in (direct, european, by_region, by_role):
        for cell in reply.cells:
            assert cell.below_floor or cell.mean != 123_456


async def test_a_small_group_cannot_be_recovered_as_total_minus_the_others(
    benchmarks: Stub, community: str
) -> None:
    europe = [pay(50_000 + n, region="europe") for n in range(8)]
    north_america = [pay(70_000 + n, region="north_america") for n in range(6)]
    oceania = [pay(99_000 + n, region="oceania") for n in range(2)]
    await seed(benchmarks, community, interleaved(europe, north_america, oceania))
    everyone = only_cell(await results(benchmarks, community))
    assert everyone.count == 16
    grouped = cells_by_group(await results(benchmarks, community, group_by="region"))
    # Oceania (2) is below the floor; showing North America too would give Oceania's total as
    # everyone - Europe - North America, so North America is held back with it.
    assert not grouped["europe"].below_floor
    assert grouped["europe"].count == 8
    assert grouped["oceania"].below_floor
    assert grouped["north_america"].below_floor
    # The same group asked as a filter is held back the same way.
    filtered = await results(benchmarks, community, filters={"region": "north_america"})
    assert filtered.below_floor


async def test_groups_list_every_option_and_empty_ones_are_below_the_floor(
    benchmarks: Stub, community: str
) -> None:
    sdrs = [pay(50_000 + n, role="sdr") for n in range(6)]
    founders = [pay(80_000 + n, role="founder") for n in range(5)]
    await seed(benchmarks, community, interleaved(sdrs, founders))
    grouped = cells_by_group(await results(benchmarks, community, group_by="role"))
    assert len(grouped) == 8
    assert grouped["sdr"].count == 6
    assert grouped["founder"].count == 5
    assert all(grouped[g].below_floor for g in grouped if g not in ("sdr", "founder"))


async def test_enum_field_results_count_options_chosen_at_least_five_times(
    benchmarks: Stub, community: str
) -> None:
    people = [pay(50_000, region="europe") for _ in range(6)] + [pay(50_000, region="oceania")]
    await seed(benchmarks, community, people)
    cell = only_cell(await results(benchmarks, community, field="region"))
    assert cell.count == 7
    assert dict(cell.option_counts) == {"europe": 6}


async def test_unknown_field_group_or_filter_value_are_field_errors(
    benchmarks: Stub, community: str
) -> None:
    for kwargs, field in (
        ({"field": "shoe_size"}, "field"),
        ({"group_by": "base_salary"}, "group_by"),
        ({"filters": {"role": "astronaut"}}, "filters.role"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await results(benchmarks, community, **kwargs)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(raised.value)) == {field}


async def test_results_follow_a_change_and_a_deletion(benchmarks: Stub, community: str) -> None:
    await seed(benchmarks, community, [pay(50_000) for _ in range(5)])
    assert only_cell(await results(benchmarks, community)).mean == 50_000
    await submit(benchmarks, community, "u0", pay(60_000))
    assert only_cell(await results(benchmarks, community)).mean == 52_000
    mine = await benchmarks.ListMySubmissions(
        benchmarks_pb2.ListMySubmissionsRequest(community_id=community, user_id="u1")
    )
    await benchmarks.DeleteSubmission(
        benchmarks_pb2.DeleteSubmissionRequest(
            community_id=community, user_id="u1", submission_id=mine.submissions[0].id
        )
    )
    assert only_cell(await results(benchmarks, community)).below_floor

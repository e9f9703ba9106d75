"""Results of a community category, under the privacy floor, and the outlier check.

What a results answer never shows (each rule applies to every cell: one field, in one group,
under the query's filters, counting only answers that are valid and answer that field):

1. Floor. A cell with fewer than `floor` answers shows no figures, only that it is below.
2. Differencing between filters. Take the cell's constraints (each filter, and its group).
   For every non-empty set S of them, the answers that meet the other constraints but fail
   every one in S must number 0 or at least `floor`. Otherwise two or more queries that
   differ by those constraints (with inclusion–exclusion) would isolate fewer than `floor`
   people: e.g. `region=eu` minus `region=eu & role=sdr` when one EU member is not an SDR.
3. Complementary groups. For each constraint `g = a` of the cell, tabulate g's values over
   the answers meeting the other constraints. Values with fewer than `floor` answers are
   hidden; when what is hidden (those values plus answers with no value for g) adds up to
   between 1 and floor - 1, the smallest shown values are hidden too, until it is 0 or at
   least `floor`. The cell shows only if `a` stays shown. So "total minus the other groups"
   never isolates a small group, whether asked as one grouped query or as several filtered
   ones, and a filter answers exactly what the same group would in a grouped query.
4. Extremes. min and max are one person's answer; they show only from `min_max_floor`.
5. Rules 1–3 are decided without the caller's own answer, so a member who knows one answer
   of a cell (their own, perhaps placed there on purpose) still faces at least `floor` others.
6. The caller's own percentile shows only in a cell that shows, for the caller's own valid
   answer; members may change an answer only a few times a day, which bounds probing the
   others by editing one's own value back and forth.

Not protected: differencing over time (results before and after one member submits differ by
that member) and linear combinations across several different grouping fields. Option counts
of ENUM fields show only options chosen at least `floor` times.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wee5_benchmarks.categories import CategorySchema, Field, FieldType
from wee5_benchmarks.snapshot import Bools, Floats, Ints, Snapshot

QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
# Outlier thresholds: classic z-score and the modified z-score of Iglewicz and Hoaglin.
Z_LIMIT = 3.0
MODIFIED_Z_LIMIT = 3.5
# Confidence by sample size: low below MEDIUM_FROM, medium below HIGH_FROM, high from there.
MEDIUM_FROM = 15
HIGH_FROM = 50


@dataclass(frozen=True)
class Filter:
    field: Field
    column: int
    code: int


@dataclass
class Cell:
    field: Field
    group: str = ""
    count: int = 0
    below_floor: bool = True
    mean: float = 0.0
    quantiles: tuple[float, ...] = (0.0,) * len(QUANTILES)
    minimum: float | None = None
    maximum: float | None = None
    confidence: str = ""
    caller_percentile: float | None = None
    option_counts: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclass
class Results:
    cells: list[Cell]
    total_count: int
    below_floor: bool


@dataclass(frozen=True)
class Privacy:
    floor: int
    min_max_floor: int


def confidence(count: int) -> str:
    if count >= HIGH_FROM:
        return "high"
    return "medium" if count >= MEDIUM_FROM else "low"


def shown_values(counts: npt.NDArray[np.int64], unvalued: int, floor: int) -> Bools:
    """Which values of a tabulated field may show (rule 3)."""
    shown = counts >= floor
    hidden = int(unvalued + counts[~shown].sum())
    while 0 < hidden < floor and shown.any():
        smallest = int(np.flatnonzero(shown)[np.argmin(counts[shown])])
        shown[smallest] = False
        hidden += int(counts[smallest])
    return shown


class ResultsQuery:
    """One results request against a snapshot; synchronous, so the snapshot cannot move."""

    def __init__(
        self,
        snapshot: Snapshot,
        schema: CategorySchema,
        privacy: Privacy,
        filters: list[Filter],
        group_by: Filter | None,
    ) -> None:
        self.snapshot = snapshot
        self.schema = schema
        self.privacy = privacy
        self.filters = filters
        # The group field's column (its code is unused).
        self.group_by = group_by
        size = snapshot.size
        self.valid = snapshot.valid[:size]
        self.choices = snapshot.choices[:size]
        self.numbers = snapshot.numbers[:size]
        self.matches = [self.choices[:, f.column] == f.code for f in filters]
        self.options = len(group_by.field.options) if group_by else 1
        self.group_codes: Ints = (
            self.choices[:, group_by.column] if group_by else np.zeros(size, dtype=np.int64)
        )
        # Per row, a bit for each filter it fails.
        self.fails = np.zeros(size, dtype=np.int64)
        for bit, match in enumerate(self.matches):
            self.fails |= (~match).astype(np.int64) << bit
        self._key_cache: dict[bool, tuple[Ints, list[tuple[Bools, Ints]]]] = {}

    def run(self, fields: list[Field], caller_row: int | None) -> Results:
        population = self.valid.copy()
        for match in self.matches:
            population &= match
        # Whether a cell shows is decided without the caller's own answer: whoever knows one
        # answer in a cell (their own) must still face at least `floor` others, or adding
        # oneself to a group of four would reveal the four.
        others = self.valid.copy()
        if caller_row is not None and caller_row < len(others):
            others[caller_row] = False
        # The population itself is a cell of no field and no group.
        population_shown = bool(self._shown(others, grouped=False)[0])
        cells: list[Cell] = []
        for spec in fields:
            group_cells = [
                Cell(
                    field=spec,
                    group=self.group_by.field.options[code].value if self.group_by else "",
                )
                for code in range(self.options)
            ]
            cells += group_cells
            if not population_shown:
                continue
            if spec.type is FieldType.NUMBER:
                column = self.schema.numeric_fields.index(spec)
                answered = self.snapshot.answered(column)
            else:
                column = self.schema.choice_fields.index(spec)
                least = 0 if spec.type is FieldType.MULTI_ENUM else -1
                answered = self.valid & (self.choices[:, column] > least)
            shown = self._shown(answered & others, grouped=self.group_by is not None)
            if not shown.any():
                continue
            if spec.type is FieldType.NUMBER:
                self._fill_numbers(group_cells, shown, column, population & answered, caller_row)
            else:
                for code, cell in enumerate(group_cells):
                    if shown[code]:
                        mask = population & answered
                        if self.group_by:
                            mask &= self.group_codes == code
                        self._fill_options(cell, spec, column, mask)
        return Results(
            cells=cells,
            total_count=int(population.sum()) if population_shown else 0,
            below_floor=not population_shown,
        )

    def _keys(self, grouped: bool) -> tuple[Ints, list[tuple[Bools, Ints]]]:
        """Per row, once per query: its table key for rules 1–2 (which filters it fails, its
        group value) and, per filter, whether it meets the other filters and its key in that
        filter's table for rule 3 (its group value, its value of the filter's field)."""
        if grouped in self._key_cache:
            return self._key_cache[grouped]
        k = self.options if grouped else 1
        groups = self.group_codes if grouped else np.zeros(len(self.valid), dtype=np.int64)
        fail_keys: Ints = self.fails * (k + 1) + (groups + 1)
        per_filter = []
        for index, flt in enumerate(self.filters):
            meets_others: Bools = (self.fails & ~(1 << index)) == 0
            width = len(flt.field.options) + 1
            per_filter.append(
                (meets_others, (groups + 1) * width + (self.choices[:, flt.column] + 1))
            )
        self._key_cache[grouped] = (fail_keys, per_filter)
        return fail_keys, per_filter

    def _shown(self, base: Bools, *, grouped: bool) -> Bools:
        """Per group value (one pseudo-group when not grouped): may a cell over the rows of
        `base` show? Rules 1–3 of the module docstring."""
        floor = self.privacy.floor
        k = self.options if grouped else 1
        fail_keys, per_filter = self._keys(grouped)
        # Rules 1 and 2: the rows of `base` by which filters they fail (a bit each) and their
        # group value (column 0: no value).
        subsets = 1 << len(self.matches)
        table = np.bincount(fail_keys[base], minlength=subsets * (k + 1)).reshape(subsets, k + 1)
        counts = table[0, 1:]
        shown: Bools = counts >= floor
        for subset in range(1, subsets):
            same_group = table[subset, 1:]
            shown &= (same_group == 0) | (same_group >= floor)
            if grouped:
                other_groups = table[subset].sum() - same_group
                shown &= (other_groups == 0) | (other_groups >= floor)
        if grouped:
            # Rule 3 for the group itself (which also covers rule 2 for S = {group}).
            shown &= shown_values(counts, int(table[0, 0]), floor)
        # Rule 3 for each filter: its field tabulated over the rows of the same group that
        # meet the other filters.
        for flt, (meets_others, keys) in zip(self.filters, per_filter, strict=True):
            width = len(flt.field.options) + 1
            per_group = np.bincount(keys[base & meets_others], minlength=(k + 1) * width).reshape(
                k + 1, width
            )
            for code in range(k):
                row = per_group[code + 1]
                if not shown_values(row[1:], int(row[0]), floor)[flt.code]:
                    shown[code] = False
        return shown

    def _fill_numbers(
        self, cells: list[Cell], shown: Bools, column: int, in_cells: Bools, caller_row: int | None
    ) -> None:
        """Figures of every shown group at once, from the column's cached value order: the
        cells' values come out sorted, grouped by one stable sort on the small group codes."""
        order, ordered = self.snapshot.sorted_column(column)
        in_order = in_cells[order]
        if self.group_by is None:
            values = ordered[in_order]
            self._fill_sorted(cells[0], values, column, caller_row)
            return
        codes = self.group_codes[order]
        in_order &= codes >= 0
        codes = codes[in_order].astype(np.int16)
        values = ordered[in_order][np.argsort(codes, kind="stable")]
        ends = np.cumsum(np.bincount(codes, minlength=self.options))
        start = 0
        for code, cell in enumerate(cells):
            end = int(ends[code])
            if shown[code]:
                caller = (
                    caller_row
                    if caller_row is not None and self.group_codes[caller_row] == code
                    else None
                )
                self._fill_sorted(cell, values[start:end], column, caller)
            start = end

    def _fill_sorted(self, cell: Cell, values: Floats, column: int, caller_row: int | None) -> None:
        count = len(values)
        cell.count, cell.below_floor, cell.confidence = count, False, confidence(count)
        cell.mean = float(values.mean())
        # Linear interpolation between order statistics (numpy's default, SQL percentile_cont).
        positions = np.array(QUANTILES) * (count - 1)
        low = np.floor(positions).astype(np.int64)
        high = np.minimum(low + 1, count - 1)
        cell.quantiles = tuple(
            float(v) for v in values[low] + (positions - low) * (values[high] - values[low])
        )
        if count >= self.privacy.min_max_floor:
            cell.minimum, cell.maximum = float(values[0]), float(values[-1])
        if caller_row is not None and self.in_population(caller_row, column):
            own = self.numbers[caller_row, column]
            below = int(np.searchsorted(values, own, side="left"))
            equal = int(np.searchsorted(values, own, side="right")) - below
            cell.caller_percentile = float(round(100.0 * (below + 0.5 * equal) / count))

    def in_population(self, row: int, column: int) -> bool:
        """Whether `row` counts in the query's cells of NUMBER column `column`."""
        return bool(
            row < len(self.valid)
            and self.valid[row]
            and not np.isnan(self.numbers[row, column])
            and all(match[row] for match in self.matches)
        )

    def _fill_options(self, cell: Cell, spec: Field, column: int, mask: Bools) -> None:
        count = int(mask.sum())
        cell.count, cell.below_floor, cell.confidence = count, False, confidence(count)
        codes = self.choices[mask, column]
        for index, option in enumerate(spec.options):
            if spec.type is FieldType.ENUM:
                chosen = int(np.count_nonzero(codes == index))
            else:
                chosen = int(np.count_nonzero(codes & (1 << index)))
            if chosen >= self.privacy.floor:
                cell.option_counts[option.value] = chosen


@dataclass(frozen=True)
class OutlierCheck:
    field: str
    value: float
    z_score: float
    modified_z_score: float
    sample_size: int

    @property
    def flagged(self) -> bool:
        return abs(self.z_score) > Z_LIMIT or abs(self.modified_z_score) > MODIFIED_Z_LIMIT


def check_outlier(
    spec: Field, value: float, others: npt.NDArray[np.float64], min_sample: int
) -> OutlierCheck | None:
    """How far `value` lies from `others` (the field's valid answers but the submitter's own),
    or None while there are fewer than `min_sample` of them. A spread of zero (everyone gave
    the same answer) is no evidence either way: that test scores 0."""
    n = len(others)
    if n < min_sample:
        return None
    mean, sd = float(others.mean()), float(others.std(ddof=1))
    z = (value - mean) / sd if sd > 0 else 0.0
    median = float(np.median(others))
    deviations = np.abs(others - median)
    mad = float(np.median(deviations))
    if mad > 0:
        modified_z = 0.6745 * (value - median) / mad
    else:
        # More than half the answers are equal: the mean absolute deviation stands in
        # (IBM SPSS's fallback), scaled to estimate the standard deviation.
        mean_ad = float(deviations.mean())
        modified_z = (value - median) / (1.253314 * mean_ad) if mean_ad > 0 else 0.0
    return OutlierCheck(spec.name, value, z, modified_z, n)


def field_values(
    snapshot: Snapshot, schema: CategorySchema, spec: Field, skip_row: int | None
) -> npt.NDArray[np.float64]:
    column = schema.numeric_fields.index(spec)
    size = snapshot.size
    mask = snapshot.valid[:size] & ~np.isnan(snapshot.numbers[:size, column])
    if skip_row is not None:
        mask[skip_row] = False
    values: npt.NDArray[np.float64] = snapshot.numbers[:size, column][mask]
    return values

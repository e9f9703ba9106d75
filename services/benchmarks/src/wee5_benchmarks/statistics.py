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
5. The caller's own percentile shows only in a cell that shows, for the caller's own valid
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
from wee5_benchmarks.snapshot import Bools, Ints, Snapshot

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

    def run(self, fields: list[Field], caller_row: int | None) -> Results:
        population = self.valid.copy()
        for match in self.matches:
            population &= match
        # The population itself is a cell of no field and no group.
        population_shown = bool(self._shown(self.valid, grouped=False)[0])
        cells: list[Cell] = []
        for spec in fields:
            answered = self._answered(spec)
            if population_shown:
                shown = self._shown(answered, grouped=self.group_by is not None)
            else:
                shown = np.zeros(self.options, dtype=np.bool_)
            for code in range(self.options):
                group = self.group_by.field.options[code].value if self.group_by else ""
                cell = Cell(field=spec, group=group)
                if shown[code]:
                    mask = population & answered
                    if self.group_by:
                        mask &= self.group_codes == code
                    self._fill(cell, spec, mask, caller_row)
                cells.append(cell)
        return Results(
            cells=cells,
            total_count=int(population.sum()) if population_shown else 0,
            below_floor=not population_shown,
        )

    def _answered(self, spec: Field) -> Bools:
        """Valid rows that answer `spec`."""
        if spec.type is FieldType.NUMBER:
            column = self.schema.numeric_fields.index(spec)
            answered: Bools = self.valid & ~np.isnan(self.numbers[:, column])
            return answered
        column = self.schema.choice_fields.index(spec)
        return self.valid & (
            self.choices[:, column] > (0 if spec.type is FieldType.MULTI_ENUM else -1)
        )

    def _shown(self, base: Bools, *, grouped: bool) -> Bools:
        """Per group value (one pseudo-group when not grouped): may a cell over the rows of
        `base` show? Rules 1–3 of the module docstring."""
        floor = self.privacy.floor
        k = self.options if grouped else 1
        groups = self.group_codes if grouped else np.zeros(len(base), dtype=np.int64)
        # Rules 1 and 2: every row of `base` by which filters it fails (a bit each) and its
        # group value (column 0: no value).
        fails = np.zeros(len(base), dtype=np.int64)
        for bit, match in enumerate(self.matches):
            fails |= (~match).astype(np.int64) << bit
        subsets = 1 << len(self.matches)
        table = np.bincount(
            fails[base] * (k + 1) + (groups[base] + 1), minlength=subsets * (k + 1)
        ).reshape(subsets, k + 1)
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
        for index, flt in enumerate(self.filters):
            others = base.copy()
            for other, match in enumerate(self.matches):
                if other != index:
                    others &= match
            width = len(flt.field.options) + 1
            per_group = np.bincount(
                (groups[others] + 1) * width + (self.choices[others, flt.column] + 1),
                minlength=(k + 1) * width,
            ).reshape(k + 1, width)
            for code in range(k):
                row = per_group[code + 1]
                if not shown_values(row[1:], int(row[0]), floor)[flt.code]:
                    shown[code] = False
        return shown

    def _fill(self, cell: Cell, spec: Field, mask: Bools, caller_row: int | None) -> None:
        privacy = self.privacy
        count = int(mask.sum())
        cell.count, cell.below_floor, cell.confidence = count, False, confidence(count)
        if spec.type is not FieldType.NUMBER:
            column = self.schema.choice_fields.index(spec)
            codes = self.choices[mask, column]
            for index, option in enumerate(spec.options):
                if spec.type is FieldType.ENUM:
                    chosen = int(np.count_nonzero(codes == index))
                else:
                    chosen = int(np.count_nonzero(codes & (1 << index)))
                if chosen >= privacy.floor:
                    cell.option_counts[option.value] = chosen
            return
        column = self.schema.numeric_fields.index(spec)
        values = self.numbers[mask, column]
        cell.mean = float(values.mean())
        cell.quantiles = tuple(float(q) for q in np.quantile(values, QUANTILES))
        if count >= privacy.min_max_floor:
            cell.minimum, cell.maximum = float(values.min()), float(values.max())
        if caller_row is not None and caller_row < len(mask) and mask[caller_row]:
            own = self.numbers[caller_row, column]
            below = np.count_nonzero(values < own)
            equal = np.count_nonzero(values == own)
            cell.caller_percentile = float(round(100.0 * (below + 0.5 * equal) / count))


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

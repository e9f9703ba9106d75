"""Benchmarks pages. Members: a form per category built from the category's field schema
(units, bounds, options), the service's refusals next to each field, their own submissions,
and results drawn as distributions with where they stand — or, under the privacy floor, why
there is no number yet. Admins: the review queue of held outliers. Every call is the JSON
routes' own (`api/benchmarks/operations.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from wee5_gateway.api.benchmarks import operations
from wee5_gateway.api.benchmarks.schemas import (
    CategoryName,
    CategoryView,
    FieldView,
    ResultCell,
    Results,
    ReviewDecision,
    SubmissionIn,
    SubmissionView,
)
from wee5_gateway.core.access import Action, requires
from wee5_gateway.core.deps import AccessDep, AuditorDep, DownstreamDep
from wee5_gateway.web.charts.distribution import Distribution, distribution_chart, ordinal
from wee5_gateway.web.dashboard import admin_context
from wee5_gateway.web.experience import member_view
from wee5_gateway.web.forms import FieldErrors, parse_form, refused_fields
from wee5_gateway.web.page import Page

AnyRequest = Request[Any, Any, Any]
STATUS_WORDS = {
    "accepted": "counted",
    "pending_review": "held for review",
    "rejected": "rejected",
}


@dataclass(frozen=True)
class FormState:
    """What the form shows: the values typed (None: the saved answers), the refusals."""

    values: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    saved: bool = False


def answers_from_form(category: CategoryView, form: FormMultiDict) -> dict[str, Any]:
    """The form's answers as the API takes them: numbers as numbers (text that is no number
    stays text, and the service says so next to the field), lists for multi-choice fields,
    unanswered fields left out."""
    answers: dict[str, Any] = {}
    for spec in category.fields:
        if spec.type == "multi_enum":
            chosen = [value for value in form.getall(spec.name, []) if value]
            if chosen:
                answers[spec.name] = chosen
            continue
        raw = str(form.get(spec.name) or "").strip()
        if not raw:
            continue
        if spec.type == "number":
            try:
                answers[spec.name] = msgspec.convert(raw, float, strict=False)
            except msgspec.ValidationError:
                answers[spec.name] = raw
        else:
            answers[spec.name] = raw
    return answers


def _form_values(form: FormMultiDict, category: CategoryView) -> dict[str, Any]:
    """What the member typed, to show again beside the errors."""
    return {
        spec.name: form.getall(spec.name, [])
        if spec.type == "multi_enum"
        else str(form.get(spec.name) or "")
        for spec in category.fields
    }


def _saved_values(submission: SubmissionView | None) -> dict[str, Any]:
    if submission is None:
        return {}
    values: dict[str, Any] = {}
    for name, value in submission.answers.items():
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        values[name] = value if isinstance(value, list) else str(value)
    return values


def _charts(
    category: CategoryView, results: Results, mine: SubmissionView | None
) -> list[dict[str, Any]]:
    """Each field's result as the template shows it: a chart, option counts, or the floor."""
    fields = {spec.name: spec for spec in category.fields}
    shown: list[dict[str, Any]] = []
    for cell in results.cells:
        spec = fields.get(cell.field)
        if spec is None or cell.group is not None:
            continue
        shown.append(_cell_view(spec, cell, mine))
    return shown


def _cell_view(spec: FieldView, cell: ResultCell, mine: SubmissionView | None) -> dict[str, Any]:
    view: dict[str, Any] = {"field": spec, "cell": cell, "chart": None, "options": []}
    if cell.below_floor:
        return view
    if spec.type == "number" and cell.median is not None:
        you = mine.answers.get(spec.name) if mine is not None else None
        view["chart"] = distribution_chart(
            Distribution(
                label=spec.label,
                unit=spec.unit,
                p10=cell.p10 or 0.0,
                p25=cell.p25 or 0.0,
                median=cell.median,
                p75=cell.p75 or 0.0,
                p90=cell.p90 or 0.0,
                minimum=cell.min,
                maximum=cell.max,
                you=float(you) if isinstance(you, int | float) else None,
                you_percentile=cell.caller_percentile,
            )
        )
    elif cell.option_counts:
        total = sum(cell.option_counts.values()) or 1
        labels = {option.value: option.label for option in spec.options or []}
        view["options"] = [
            {"label": labels.get(value, value), "count": count, "pct": round(100 * count / total)}
            for value, count in sorted(cell.option_counts.items(), key=lambda item: -item[1])
        ]
    return view


class BenchmarkPages(Controller):
    """A member's benchmarks: `/experiences/{id}/benchmarks`."""

    path = "/experiences/{community_id:str}/benchmarks"

    async def _render(
        self,
        page: Page,
        access: AccessDep,
        downstream: DownstreamDep,
        community_id: str,
        chosen: CategoryName | None,
        state: FormState,
    ) -> Template:
        categories = (await operations.categories(downstream)).categories
        category = next((c for c in categories if c.category == chosen), categories[0])
        submissions = await operations.my_submissions(downstream, access, community_id)
        mine = next((s for s in submissions if s.category == category.category), None)
        results = await operations.results(downstream, access, community_id, category.category)
        labels = {c.category: c.label for c in categories}
        return page.render(
            "benchmarks/index.html",
            status_code=422 if state.errors else 200,
            **await member_view(page, access, "benchmarks"),
            categories=categories,
            category=category,
            values=state.values if state.values is not None else _saved_values(mine),
            errors=state.errors,
            saved=state.saved,
            mine=mine,
            submissions=submissions,
            category_labels=labels,
            status_words=STATUS_WORDS,
            results=results,
            charts=_charts(category, results, mine),
            ordinal=ordinal,
        )

    @get("/", opt=requires(Action.READ_BENCHMARKS), name="benchmarks:member")
    async def show(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        category: FromQuery[CategoryName | None] = None,
        saved: FromQuery[bool] = False,
    ) -> Template:
        return await self._render(
            page, access, downstream, community_id, category, FormState(saved=saved)
        )

    @post("/{category:str}", opt=requires(Action.SUBMIT_BENCHMARKS), status_code=HTTP_303_SEE_OTHER)
    async def submit(
        self,
        community_id: FromPath[str],
        category: FromPath[CategoryName],
        request: AnyRequest,
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
    ) -> Template | Redirect:
        form = await request.form()
        schema = next(
            c
            for c in (await operations.categories(downstream)).categories
            if c.category == category
        )
        try:
            body = parse_form(
                {
                    "answers": answers_from_form(schema, form),
                    "schema_version": form.get("schema_version", ""),
                },
                SubmissionIn,
            )
            await refused_fields(
                operations.submit(downstream, access, community_id, category, body)
            )
        except FieldErrors as refused:
            return await self._render(
                page,
                access,
                downstream,
                community_id,
                category,
                FormState(values=_form_values(form, schema), errors=refused.errors),
            )
        return Redirect(
            page.member_url(community_id, f"/benchmarks?category={category}&saved=true#results"),
            status_code=HTTP_303_SEE_OTHER,
        )


class BenchmarkReviewPages(Controller):
    """Admins: submissions held as outliers, to approve (they count) or reject."""

    path = "/{community_id:str}/benchmarks"

    @get("/review", opt=requires(Action.REVIEW_BENCHMARKS), name="benchmarks:review")
    async def queue(
        self,
        community_id: FromPath[str],
        page: NamedDependency[Page],
        access: AccessDep,
        downstream: DownstreamDep,
        cursor: FromQuery[str | None] = None,
        reviewed: FromQuery[str | None] = None,
    ) -> Template:
        return await self._render(page, access, downstream, community_id, cursor, reviewed=reviewed)

    async def _render(
        self,
        page: Page,
        access: AccessDep,
        downstream: DownstreamDep,
        community_id: str,
        cursor: str | None,
        *,
        reviewed: str | None = None,
        errors: dict[str, dict[str, str]] | None = None,
        status_code: int = 200,
    ) -> Template:
        queue = await operations.review_queue(downstream, community_id, cursor=cursor)
        categories = (await operations.categories(downstream)).categories
        return page.render(
            "benchmarks/review.html",
            status_code=status_code,
            **admin_context(access, "benchmarks"),
            community_id=community_id,
            queue=queue,
            fields={c.category: {f.name: f for f in c.fields} for c in categories},
            category_labels={c.category: c.label for c in categories},
            reviewed=reviewed,
            errors=errors or {},
        )

    @post(
        "/review/{submission_id:str}",
        opt=requires(Action.REVIEW_BENCHMARKS),
        status_code=HTTP_303_SEE_OTHER,
    )
    async def review(
        self,
        community_id: FromPath[str],
        submission_id: FromPath[str],
        request: AnyRequest,
        page: NamedDependency[Page],
        access: AccessDep,
        audit: AuditorDep,
        downstream: DownstreamDep,
    ) -> Template | Redirect:
        form = await request.form()
        try:
            decision = parse_form(dict(form), ReviewDecision)
            reviewed = await refused_fields(
                operations.review(downstream, access, audit, community_id, submission_id, decision)
            )
        except FieldErrors as refused:
            return await self._render(
                page,
                access,
                downstream,
                community_id,
                None,
                errors={submission_id: refused.errors},
                status_code=422,
            )
        return Redirect(
            page.admin_url(community_id, f"/benchmarks/review?reviewed={reviewed.status}"),
            status_code=HTTP_303_SEE_OTHER,
        )

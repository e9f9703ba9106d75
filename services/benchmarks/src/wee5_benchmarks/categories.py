"""The benchmark categories and their versioned field schemas, and the validation of answers.

A category's schema only grows: a new version may add fields or options but never removes or
renames one, so a field's name means the same in every version and submissions made against
an older version still count (their missing fields are simply absent).
Numbers are stored in typed arrays aligned to the latest version's NUMBER fields (`numbers`)
and ENUM/MULTI_ENUM fields (`choices`: the option's index, or a bit mask for MULTI_ENUM), which
is what results read; the answers themselves are kept as JSON for their owner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    COMPENSATION = "compensation"
    INFRASTRUCTURE = "infrastructure"
    BUSINESS = "business"
    OPERATIONAL = "operational"


class FieldType(StrEnum):
    NUMBER = "number"
    ENUM = "enum"
    MULTI_ENUM = "multi_enum"


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    type: FieldType
    description: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    options: tuple[Option, ...] = ()
    required: bool = False
    groupable: bool = False

    def option_index(self, value: str) -> int | None:
        for index, option in enumerate(self.options):
            if option.value == value:
                return index
        return None


@dataclass(frozen=True)
class CategorySchema:
    category: Category
    version: int
    label: str
    description: str
    fields: tuple[Field, ...]
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def numeric_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type is FieldType.NUMBER)

    @property
    def choice_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type is not FieldType.NUMBER)


@dataclass(frozen=True)
class FieldViolation:
    field: str
    message: str


def _options(*pairs: tuple[str, str]) -> tuple[Option, ...]:
    return tuple(Option(value, label) for value, label in pairs)


REGIONS = _options(
    ("north_america", "North America"),
    ("latin_america", "Latin America"),
    ("uk_ireland", "UK & Ireland"),
    ("europe", "Europe (rest)"),
    ("middle_east_africa", "Middle East & Africa"),
    ("south_asia", "South Asia"),
    ("east_asia", "East & Southeast Asia"),
    ("oceania", "Oceania"),
)
TOOLS = _options(
    ("instantly", "Instantly"),
    ("smartlead", "Smartlead"),
    ("lemlist", "lemlist"),
    ("apollo", "Apollo"),
    ("clay", "Clay"),
    ("hubspot", "HubSpot"),
    ("salesforce", "Salesforce"),
    ("outreach", "Outreach"),
    ("salesloft", "Salesloft"),
    ("other", "Other"),
)
USD_YEAR = "USD/year"
USD_MONTH = "USD/month"
PERCENT = "%"

_COMPENSATION = CategorySchema(
    Category.COMPENSATION,
    1,
    "Compensation",
    "Pay of sales and outbound roles: base, variable and on-target earnings.",
    (
        Field(
            "role",
            "Role",
            FieldType.ENUM,
            required=True,
            groupable=True,
            options=_options(
                ("sdr", "SDR"),
                ("bdr", "BDR"),
                ("account_executive", "Account executive"),
                ("account_manager", "Account manager"),
                ("sales_manager", "Sales manager"),
                ("head_of_sales", "Head of sales"),
                ("founder", "Founder"),
                ("other", "Other"),
            ),
        ),
        Field("region", "Region", FieldType.ENUM, required=True, groupable=True, options=REGIONS),
        Field(
            "seniority",
            "Seniority",
            FieldType.ENUM,
            groupable=True,
            options=_options(
                ("junior", "Junior"),
                ("mid", "Mid-level"),
                ("senior", "Senior"),
                ("lead", "Lead"),
                ("executive", "Executive"),
            ),
        ),
        Field(
            "employment_type",
            "Employment type",
            FieldType.ENUM,
            groupable=True,
            options=_options(
                ("full_time", "Full-time"),
                ("part_time", "Part-time"),
                ("contractor", "Contractor"),
            ),
        ),
        Field(
            "base_salary",
            "Base salary",
            FieldType.NUMBER,
            "Gross fixed pay per year, before commission.",
            unit=USD_YEAR,
            minimum=0,
            maximum=1_000_000,
            required=True,
        ),
        Field(
            "commission_rate",
            "Commission rate",
            FieldType.NUMBER,
            "Share of closed revenue paid as commission.",
            unit=PERCENT,
            minimum=0,
            maximum=100,
        ),
        Field(
            "ote",
            "On-target earnings",
            FieldType.NUMBER,
            "Base plus variable pay at 100 % of quota, per year.",
            unit=USD_YEAR,
            minimum=0,
            maximum=2_000_000,
        ),
        Field(
            "team_size",
            "Team size",
            FieldType.NUMBER,
            "People in the sales team, you included.",
            unit="people",
            minimum=1,
            maximum=10_000,
            integer=True,
        ),
        Field(
            "years_experience",
            "Years of experience",
            FieldType.NUMBER,
            unit="years",
            minimum=0,
            maximum=50,
        ),
    ),
)

_INFRASTRUCTURE = CategorySchema(
    Category.INFRASTRUCTURE,
    1,
    "Infrastructure",
    "The outbound stack: tools, what it costs, and the sending setup.",
    (
        Field("tools", "Tools in use", FieldType.MULTI_ENUM, options=TOOLS),
        Field(
            "primary_sending_tool",
            "Primary sending tool",
            FieldType.ENUM,
            required=True,
            groupable=True,
            options=TOOLS,
        ),
        Field(
            "monthly_tool_spend",
            "Monthly tool spend",
            FieldType.NUMBER,
            "Everything paid for software and data per month.",
            unit=USD_MONTH,
            minimum=0,
            maximum=100_000,
            required=True,
        ),
        Field(
            "domains",
            "Sending domains",
            FieldType.NUMBER,
            unit="domains",
            minimum=0,
            maximum=10_000,
            integer=True,
        ),
        Field(
            "inboxes",
            "Sending inboxes",
            FieldType.NUMBER,
            unit="inboxes",
            minimum=0,
            maximum=100_000,
            integer=True,
        ),
        Field(
            "daily_emails_per_inbox",
            "Emails per inbox per day",
            FieldType.NUMBER,
            unit="emails/day",
            minimum=0,
            maximum=500,
        ),
        Field(
            "warmup_days",
            "Warm-up period",
            FieldType.NUMBER,
            "Days a new inbox warms up before it sends campaigns.",
            unit="days",
            minimum=0,
            maximum=365,
            integer=True,
        ),
    ),
)

_BUSINESS = CategorySchema(
    Category.BUSINESS,
    1,
    "Business",
    "The business: revenue, clients, team and how it charges.",
    (
        Field(
            "revenue_band",
            "Annual revenue",
            FieldType.ENUM,
            required=True,
            groupable=True,
            options=_options(
                ("under_100k", "Under $100k"),
                ("100k_500k", "$100k–$500k"),
                ("500k_1m", "$500k–$1M"),
                ("1m_5m", "$1M–$5M"),
                ("over_5m", "Over $5M"),
            ),
        ),
        Field(
            "pricing_model",
            "Pricing model",
            FieldType.ENUM,
            required=True,
            groupable=True,
            options=_options(
                ("retainer", "Retainer"),
                ("pay_per_meeting", "Pay per meeting"),
                ("pay_per_lead", "Pay per lead"),
                ("revenue_share", "Revenue share"),
                ("hybrid", "Hybrid"),
            ),
        ),
        Field("region", "Region", FieldType.ENUM, groupable=True, options=REGIONS),
        Field(
            "active_clients",
            "Active clients",
            FieldType.NUMBER,
            unit="clients",
            minimum=0,
            maximum=10_000,
            integer=True,
            required=True,
        ),
        Field(
            "team_size",
            "Team size",
            FieldType.NUMBER,
            "People working in the business, you included.",
            unit="people",
            minimum=1,
            maximum=10_000,
            integer=True,
        ),
        Field(
            "monthly_revenue",
            "Monthly revenue",
            FieldType.NUMBER,
            unit=USD_MONTH,
            minimum=0,
            maximum=10_000_000,
        ),
        Field(
            "average_retainer",
            "Average retainer",
            FieldType.NUMBER,
            "What a client pays per month on average.",
            unit=USD_MONTH,
            minimum=0,
            maximum=1_000_000,
        ),
        Field(
            "net_margin",
            "Net margin",
            FieldType.NUMBER,
            unit=PERCENT,
            minimum=-100,
            maximum=100,
        ),
    ),
)

_OPERATIONAL = CategorySchema(
    Category.OPERATIONAL,
    1,
    "Operational",
    "Campaign results: replies, meetings and churn.",
    (
        Field(
            "channel",
            "Main channel",
            FieldType.ENUM,
            required=True,
            groupable=True,
            options=_options(
                ("cold_email", "Cold email"),
                ("linkedin", "LinkedIn"),
                ("cold_call", "Cold calling"),
                ("multichannel", "Multichannel"),
            ),
        ),
        Field(
            "industry_focus",
            "Industry focus",
            FieldType.ENUM,
            groupable=True,
            options=_options(
                ("saas", "SaaS"),
                ("agencies", "Agencies"),
                ("ecommerce", "E-commerce"),
                ("finance", "Finance"),
                ("healthcare", "Healthcare"),
                ("real_estate", "Real estate"),
                ("other", "Other"),
            ),
        ),
        Field(
            "reply_rate",
            "Reply rate",
            FieldType.NUMBER,
            "Replies per contacted prospect.",
            unit=PERCENT,
            minimum=0,
            maximum=100,
            required=True,
        ),
        Field(
            "positive_reply_rate",
            "Positive reply rate",
            FieldType.NUMBER,
            unit=PERCENT,
            minimum=0,
            maximum=100,
        ),
        Field(
            "meetings_booked_per_month",
            "Meetings booked per month",
            FieldType.NUMBER,
            unit="meetings/month",
            minimum=0,
            maximum=10_000,
        ),
        Field("show_rate", "Show rate", FieldType.NUMBER, unit=PERCENT, minimum=0, maximum=100),
        Field("bounce_rate", "Bounce rate", FieldType.NUMBER, unit=PERCENT, minimum=0, maximum=100),
        Field(
            "monthly_client_churn",
            "Monthly client churn",
            FieldType.NUMBER,
            unit=PERCENT,
            minimum=0,
            maximum=100,
        ),
    ),
)

# Every version of every category, oldest first; the last one is current.
SCHEMAS: dict[Category, tuple[CategorySchema, ...]] = {
    Category.COMPENSATION: (_COMPENSATION,),
    Category.INFRASTRUCTURE: (_INFRASTRUCTURE,),
    Category.BUSINESS: (_BUSINESS,),
    Category.OPERATIONAL: (_OPERATIONAL,),
}


def current_schema(category: Category) -> CategorySchema:
    return SCHEMAS[category][-1]


def schema_version(category: Category, version: int) -> CategorySchema | None:
    """The schema of `version` (0: the current one), or None when there is no such version."""
    if version == 0:
        return current_schema(category)
    return next((s for s in SCHEMAS[category] if s.version == version), None)


def validate_answers(schema: CategorySchema, answers: dict[str, Any]) -> list[FieldViolation]:
    """Every problem with `answers` against `schema`, one per field (empty when valid)."""
    violations: list[FieldViolation] = []
    for name in sorted(set(answers) - set(schema.by_name)):
        violations.append(
            FieldViolation(name, f"is not a field of {schema.category} v{schema.version}")
        )
    for spec in schema.fields:
        value = answers.get(spec.name)
        if value is None:
            if spec.required:
                violations.append(FieldViolation(spec.name, "is required"))
            continue
        problem = _field_problem(spec, value)
        if problem:
            violations.append(FieldViolation(spec.name, problem))
    return violations


def _field_problem(spec: Field, value: Any) -> str | None:
    if spec.type is FieldType.NUMBER:
        return _number_problem(spec, value)
    if spec.type is FieldType.ENUM:
        return _enum_problem(spec, value)
    return _multi_enum_problem(spec, value)


def _allowed_options(spec: Field) -> str:
    return ", ".join(option.value for option in spec.options)


def _number_problem(spec: Field, value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"must be a number ({spec.unit})" if spec.unit else "must be a number"
    if spec.integer and value != int(value):
        return "must be a whole number"
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {spec.minimum:g} {spec.unit}".rstrip()
    if spec.maximum is not None and value > spec.maximum:
        return f"must be at most {spec.maximum:g} {spec.unit}".rstrip()
    return None


def _enum_problem(spec: Field, value: Any) -> str | None:
    if not isinstance(value, str) or spec.option_index(value) is None:
        return f"must be one of: {_allowed_options(spec)}"
    return None


def _multi_enum_problem(spec: Field, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"must be a list of: {_allowed_options(spec)}"
    unknown = sorted({item for item in value if spec.option_index(item) is None})
    if unknown:
        return f"has unknown options {', '.join(unknown)}; allowed: {_allowed_options(spec)}"
    if len(set(value)) != len(value):
        return "lists an option more than once"
    return None


def typed_values(
    schema: CategorySchema, answers: dict[str, Any]
) -> tuple[list[float | None], list[int | None]]:
    """Valid answers as the arrays results read: `numbers` aligned to the category's current
    NUMBER fields, `choices` to its ENUM (option index) and MULTI_ENUM (bit mask) fields."""
    current = current_schema(schema.category)
    numbers: list[float | None] = []
    for spec in current.numeric_fields:
        value = answers.get(spec.name)
        numbers.append(None if value is None else float(value))
    choices: list[int | None] = []
    for spec in current.choice_fields:
        value = answers.get(spec.name)
        if value is None:
            choices.append(None)
        elif spec.type is FieldType.ENUM:
            choices.append(spec.option_index(value))
        else:
            indexes = [spec.option_index(item) for item in value]
            choices.append(sum(1 << index for index in indexes if index is not None))
    return numbers, choices


def normalized(schema: CategorySchema, answers: dict[str, Any]) -> dict[str, Any]:
    """Valid answers as stored: whole numbers as integers, unanswered fields left out."""
    stored: dict[str, Any] = {}
    for name, value in answers.items():
        if value is None:
            continue
        spec = schema.by_name[name]
        stored[name] = int(value) if spec.integer else value
    return stored

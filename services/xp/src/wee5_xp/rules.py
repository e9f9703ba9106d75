"""A community's XP configuration: what each kind earns, the rules that skip an activity,
multipliers and boosts, the level curve and the time zone its days, weeks and months follow.

Stored as JSON (`xp.configs`); `XpConfig.validate` is the one place the bounds live.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wee5_xp.errors import InvalidXpConfig
from wee5_xp.levels import MAX_LEVEL, PRESETS, SHAPES, CurveSpec, LevelCurve, preset

XP_BOUNDS = (0, 1000)
MAX_COOLDOWN_SECONDS = 7 * 24 * 3600
MAX_MIN_MESSAGE_LENGTH = 4000
MULTIPLIER_BOUNDS = (0.0, 10.0)
MAX_CHANNELS = 500
MAX_CUSTOM_KINDS = 50
MAX_BOOSTS = 50
MAX_COEFFICIENT = 1_000_000
BUILT_IN_KINDS = ("message", "post", "reaction")
_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class XpRange:
    """Fixed when min == max, else drawn uniformly from [min, max]."""

    min: int
    max: int

    def draw(self) -> int:
        return self.min if self.min == self.max else random.randint(self.min, self.max)


@dataclass(frozen=True)
class Boost:
    """A timed multiplier, e.g. double XP this weekend: [starts_at, ends_at)."""

    starts_at: datetime
    ends_at: datetime
    multiplier: float
    name: str = ""


@dataclass(frozen=True)
class XpConfig:
    rates: dict[str, XpRange]  # message, post, reaction
    custom_kinds: dict[str, XpRange] = field(default_factory=dict)
    cooldown_seconds: int = 60
    min_message_length: int = 0
    no_xp_channels: frozenset[str] = frozenset()
    channel_multipliers: dict[str, float] = field(default_factory=dict)
    boosts: tuple[Boost, ...] = ()
    curve: CurveSpec = field(default_factory=lambda: preset("default"))
    timezone: str = "UTC"

    @property
    def zone(self) -> tzinfo:
        return UTC if self.timezone == "UTC" else ZoneInfo(self.timezone)

    @property
    def level_curve(self) -> LevelCurve:
        return self.curve.curve()

    def rate(self, kind: str, custom_kind: str | None) -> XpRange | None:
        if kind == "custom":
            return self.custom_kinds.get(custom_kind or "")
        return self.rates.get(kind)

    def multiplier(self, channel_id: str | None, at: datetime) -> float:
        """The channel's multiplier times the strongest boost running at `at`."""
        channel = self.channel_multipliers.get(channel_id or "", 1.0)
        boost = max(
            (b.multiplier for b in self.boosts if b.starts_at <= at < b.ends_at), default=1.0
        )
        return channel * boost

    def xp_for(
        self, kind: str, custom_kind: str | None, channel_id: str | None, at: datetime
    ) -> int:
        rate = self.rate(kind, custom_kind)
        base = rate.draw() if rate else 0
        return math.floor(base * self.multiplier(channel_id, at) + 0.5)

    def validate(self) -> XpConfig:
        """This config, or InvalidXpConfig naming every field that is out of bounds."""
        errors: dict[str, str] = {}
        self._check_rates(errors)
        if not 0 <= self.cooldown_seconds <= MAX_COOLDOWN_SECONDS:
            errors["cooldown_seconds"] = f"must be between 0 and {MAX_COOLDOWN_SECONDS}"
        if not 0 <= self.min_message_length <= MAX_MIN_MESSAGE_LENGTH:
            errors["min_message_length"] = f"must be between 0 and {MAX_MIN_MESSAGE_LENGTH}"
        self._check_channels(errors)
        self._check_boosts(errors)
        _check_curve(errors, self.curve)
        try:
            self.zone  # noqa: B018 - resolving the zone is the check
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = "must be an IANA time zone such as UTC or Europe/Berlin"
        if errors:
            raise InvalidXpConfig(errors)
        return self

    def _check_rates(self, errors: dict[str, str]) -> None:
        for kind in BUILT_IN_KINDS:
            if kind not in self.rates:
                errors[kind] = "is required"
        for kind, rate in self.rates.items():
            _check_range(errors, kind, rate)
        if len(self.custom_kinds) > MAX_CUSTOM_KINDS:
            errors["custom_kinds"] = f"at most {MAX_CUSTOM_KINDS} kinds"
        for name, rate in self.custom_kinds.items():
            if not _NAME.match(name):
                errors[f"custom_kinds.{name}"] = "names are lower-case letters, digits, _ . -"
            _check_range(errors, f"custom_kinds.{name}", rate)

    def _check_channels(self, errors: dict[str, str]) -> None:
        if len(self.no_xp_channels) > MAX_CHANNELS:
            errors["no_xp_channel_ids"] = f"at most {MAX_CHANNELS} channels"
        if any(not channel or len(channel) > 64 for channel in self.no_xp_channels):
            errors["no_xp_channel_ids"] = "channel ids are 1 to 64 characters"
        if len(self.channel_multipliers) > MAX_CHANNELS:
            errors["channel_multipliers"] = f"at most {MAX_CHANNELS} channels"
        for channel, value in self.channel_multipliers.items():
            if not channel or len(channel) > 64:
                errors["channel_multipliers"] = "channel ids are 1 to 64 characters"
            elif not _multiplier_in_bounds(value):
                errors[f"channel_multipliers.{channel}"] = _MULTIPLIER_BOUNDS_MESSAGE

    def _check_boosts(self, errors: dict[str, str]) -> None:
        if len(self.boosts) > MAX_BOOSTS:
            errors["boosts"] = f"at most {MAX_BOOSTS} boost windows"
        for i, boost in enumerate(self.boosts):
            if boost.ends_at <= boost.starts_at:
                errors[f"boosts[{i}].ends_at"] = "must be after starts_at"
            if not _multiplier_in_bounds(boost.multiplier):
                errors[f"boosts[{i}].multiplier"] = _MULTIPLIER_BOUNDS_MESSAGE

    def to_json(self) -> dict[str, Any]:
        return {
            "rates": {k: [r.min, r.max] for k, r in self.rates.items()},
            "custom_kinds": {k: [r.min, r.max] for k, r in self.custom_kinds.items()},
            "cooldown_seconds": self.cooldown_seconds,
            "min_message_length": self.min_message_length,
            "no_xp_channels": sorted(self.no_xp_channels),
            "channel_multipliers": self.channel_multipliers,
            "boosts": [
                [b.starts_at.isoformat(), b.ends_at.isoformat(), b.multiplier, b.name]
                for b in self.boosts
            ],
            "curve": {
                "preset": self.curve.preset,
                "shape": self.curve.shape,
                "coefficients": list(self.curve.coefficients),
                "first_level": self.curve.first_level,
                "max_level": self.curve.max_level,
            },
            "timezone": self.timezone,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> XpConfig:
        curve = data["curve"]
        return cls(
            rates={k: XpRange(*v) for k, v in data["rates"].items()},
            custom_kinds={k: XpRange(*v) for k, v in data["custom_kinds"].items()},
            cooldown_seconds=data["cooldown_seconds"],
            min_message_length=data["min_message_length"],
            no_xp_channels=frozenset(data["no_xp_channels"]),
            channel_multipliers=dict(data["channel_multipliers"]),
            boosts=tuple(
                Boost(datetime.fromisoformat(s), datetime.fromisoformat(e), m, n)
                for s, e, m, n in data["boosts"]
            ),
            curve=CurveSpec(
                curve["shape"],
                tuple(curve["coefficients"]),
                curve["first_level"],
                curve["max_level"],
                curve["preset"],
            ),
            timezone=data["timezone"],
        )


_MULTIPLIER_BOUNDS_MESSAGE = f"must be between {MULTIPLIER_BOUNDS[0]} and {MULTIPLIER_BOUNDS[1]}"


def _multiplier_in_bounds(value: float) -> bool:
    low, high = MULTIPLIER_BOUNDS
    return math.isfinite(value) and low <= value <= high


def _check_range(errors: dict[str, str], name: str, rate: XpRange) -> None:
    low, high = XP_BOUNDS
    if not (low <= rate.min <= high and low <= rate.max <= high):
        errors[name] = f"XP must be between {low} and {high}"
    elif rate.min > rate.max:
        errors[name] = "min must not exceed max"


def checked_curve(spec: CurveSpec) -> CurveSpec:
    """The curve, or InvalidXpConfig naming its fields out of bounds (as `validate` does)."""
    errors: dict[str, str] = {}
    _check_curve(errors, spec)
    if errors:
        raise InvalidXpConfig(errors)
    return spec


def _check_curve(errors: dict[str, str], spec: CurveSpec) -> None:
    if spec.preset is not None and spec.preset not in PRESETS:
        errors["curve.preset"] = f"must be one of {', '.join(PRESETS)}"
        return
    if spec.shape not in SHAPES:
        errors["curve.shape"] = f"must be one of {', '.join(SHAPES)}"
        return
    if len(spec.coefficients) != SHAPES[spec.shape]:
        errors["curve.coefficients"] = (
            f"a {spec.shape} curve takes {SHAPES[spec.shape]} coefficients, highest power first"
        )
        return
    if any(not 0 <= c <= MAX_COEFFICIENT for c in spec.coefficients):
        errors["curve.coefficients"] = f"must be between 0 and {MAX_COEFFICIENT}"
    elif spec.coefficients[-1] < 1:
        errors["curve.coefficients"] = "the constant term must be at least 1 (every level costs XP)"
    if spec.first_level not in (0, 1):
        errors["curve.first_level"] = "must be 0 or 1"
    if not spec.first_level < spec.max_level <= MAX_LEVEL:
        errors["max_level"] = f"must be above the first level and at most {MAX_LEVEL}"

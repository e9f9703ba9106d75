"""Forms on pages: a form's fields become the JSON API's own body type (so the same
constraints apply), and what the rules refuse comes back as errors next to each field,
whether msgspec refused the shape or a service refused the content (gRPC field violations).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import msgspec

from wee5_gateway.core.problems import field_violations

T = TypeVar("T")
_AT_FIELD = re.compile(r" - at `\$\.([A-Za-z0-9_.\[\]]+)`$")
# A field's key in the form and in error messages: `rates.message`, `fields[0].unit`.
FORM_ERROR = "_form"


@dataclass
class FieldErrors(Exception):
    """What the rules refused, by field name (`_form` for what belongs to no one field)."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{key}: {message}" for key, message in self.errors.items())


def parse_form(values: Mapping[str, Any], body_type: type[T]) -> T:
    """The form as the API's body type, converting text to numbers and booleans as the type
    says; raises `FieldErrors` naming the field msgspec refused."""
    cleaned = {key: value for key, value in values.items() if value != ""}
    try:
        return msgspec.convert(cleaned, body_type, strict=False)
    except msgspec.ValidationError as refused:
        message = str(refused)
        match = _AT_FIELD.search(message)
        key = match.group(1) if match else FORM_ERROR
        raise FieldErrors({key: _AT_FIELD.sub("", message)}) from None


async def refused_fields(call: Awaitable[T]) -> T:
    """The result of a downstream call; a refusal naming fields (INVALID_ARGUMENT with field
    violations) becomes `FieldErrors`, anything else goes on to the page's error handling."""
    try:
        return await call
    except grpc.aio.AioRpcError as refused:
        if refused.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        violations = field_violations(refused)
        if not violations:
            raise FieldErrors({FORM_ERROR: refused.details() or "invalid"}) from None
        raise FieldErrors({v["key"]: v["message"] for v in violations}) from None

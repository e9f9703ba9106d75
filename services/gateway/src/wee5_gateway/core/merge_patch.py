"""Partial updates as JSON merge patches (RFC 7396): a PATCH body is applied to the current
settings and the result is checked, written and audited exactly as the PUT body would be, so
the two can never disagree on a rule. `null` removes a member: a field with a default gets
its default back, a required one makes the result invalid (a 400 naming it)."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar.params import BodyKwarg

from wee5_gateway.core.input_errors import body_errors
from wee5_gateway.core.openapi import body_example

Body = TypeVar("Body", bound=msgspec.Struct)
# A PATCH body: any JSON object, merged into the current settings.
MergePatch = dict[str, Any]

PATCH_DESCRIPTION = (
    "A JSON merge patch (RFC 7396) of the body `PUT` takes: members left out keep their "
    "current value, `null` resets a member to its default, objects are merged member by "
    "member. The result is checked and written as the `PUT` would be."
)


def patch_body(example: dict[str, Any]) -> BodyKwarg:
    """How a PATCH route documents its `data` (`Annotated[MergePatch, patch_body(…)]`)."""
    return body_example(example, "Change some settings", PATCH_DESCRIPTION)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 §2, MergePatch(Target, Patch)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def patched(current: msgspec.Struct, patch: dict[str, Any], body_type: type[Body]) -> Body:
    """`patch` applied to the fields of `body_type` in `current` (a view of the settings as
    they are), as the `body_type` a PUT would have sent; a result that is not one is a 400
    naming the field at fault."""
    fields = {field.encode_name for field in msgspec.structs.fields(body_type)}
    document = {
        name: value
        for name, value in msgspec.to_builtins(current).items()
        if name in fields and value is not None
    }
    try:
        return msgspec.convert(merge_patch(document, patch), body_type)
    except msgspec.ValidationError as error:
        raise body_errors(error, body_type) from None

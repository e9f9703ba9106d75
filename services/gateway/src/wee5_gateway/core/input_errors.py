"""Validation errors that say how to fix them: an invalid enum value is answered with the
values allowed there, an unknown field with the closest known one (`level_up_message` →
did you mean `level_up_template`?). The allowed values and fields are read from the type the
route validates against, so they never drift from what it accepts."""

from __future__ import annotations

import difflib
import re
from enum import Enum
from typing import Any

import msgspec
import msgspec.inspect as mi
from litestar.exceptions import ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.typing import FieldDefinition

InputError = dict[str, Any]

_INVALID_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `(?P<field>.+)`$")
_PATH_PART = re.compile(r"[^.\[\]]+|\[[^\]]*\]")
# Litestar names the body itself (its top level) `data`.
_BODY_ROOT = "data"


def explain(errors: list[InputError], handler: BaseRouteHandler | None) -> list[InputError]:
    """`errors` as Litestar reported them for `handler`'s input, each taught what it can."""
    if handler is None:
        return errors
    parameters = _parameters(handler)
    taught = []
    for error in errors:
        key, source = str(error.get("key") or ""), error.get("source")
        if source == "body" and _BODY_ROOT in parameters:
            root, path = parameters[_BODY_ROOT].annotation, _body_path(key)
        elif key in parameters:
            root, path = parameters[key].annotation, []
        else:
            taught.append(error)
            continue
        taught.append(_teach(error, root, path))
    return taught


def _parameters(handler: BaseRouteHandler) -> dict[str, FieldDefinition]:
    """The handler's parameters and those of its dependencies (e.g. a list's filters)."""
    parameters: dict[str, FieldDefinition] = {}
    for dependency in handler.resolve_dependencies().values():
        signature = getattr(dependency, "parsed_fn_signature", None)
        if signature is not None:
            parameters.update(signature.parameters)
    return {**parameters, **handler.parsed_fn_signature.parameters}


def body_errors(error: msgspec.ValidationError, body_type: Any) -> ValidationException:
    """A body that is not a valid `body_type`, as the same 400 Litestar answers for one sent
    to a route that takes `body_type` (the PATCH routes check their merged result so)."""
    message, _, where = str(error).partition(" - at `$")
    key = where.rstrip("`").lstrip(".") or _BODY_ROOT
    taught = _teach({"message": message, "key": key, "source": "body"}, body_type, _body_path(key))
    return ValidationException(detail="the body is not valid", extra=[taught])


def _body_path(key: str) -> list[str]:
    return [] if key == _BODY_ROOT else _PATH_PART.findall(key)


def _teach(error: InputError, root: Any, path: list[str]) -> InputError:
    message = str(error.get("message") or "")
    if _INVALID_ENUM.match(message):
        allowed = _allowed_values(_type_at(mi.type_info(root), path))
        if allowed:
            listed = ", ".join(repr(value) for value in allowed)
            return {**error, "message": f"{message}; allowed: {listed}", "allowed": allowed}
    elif unknown := _UNKNOWN_FIELD.match(message):
        fields = _field_names(_type_at(mi.type_info(root), path))
        if fields:
            close = difflib.get_close_matches(unknown["field"], fields, n=1)
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else "known fields: " + ", ".join(f"`{name}`" for name in fields)
            )
            return {**error, "message": f"{message}; {hint}", "allowed": fields}
    return error


def _type_at(info: mi.Type | None, path: list[str]) -> mi.Type | None:
    """The type at `path` (field names, `[i]` items) inside `info`; a union is looked into
    option by option."""
    if info is None or not path:
        return info
    if isinstance(info, mi.Metadata):
        return _type_at(info.type, path)
    if isinstance(info, mi.UnionType):
        found = (_type_at(option, path) for option in info.types)
        return next((option for option in found if option is not None), None)
    return _type_at(_member(info, path[0]), path[1:])


def _member(info: mi.Type, name: str) -> mi.Type | None:
    """The type of field `name` of a struct, or of an item (`[…]`) of a collection."""
    if isinstance(info, mi.StructType | mi.TypedDictType | mi.DataclassType):
        return next((f.type for f in info.fields if f.encode_name == name), None)
    if not name.startswith("["):
        return None
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return info.item_type
    if isinstance(info, mi.DictType):
        return info.value_type
    return None


def _allowed_values(info: mi.Type | None) -> list[Any]:
    if isinstance(info, mi.Metadata):
        return _allowed_values(info.type)
    if isinstance(info, mi.LiteralType):
        return list(info.values)
    if isinstance(info, mi.EnumType):
        return [member.value for member in info.cls if isinstance(member, Enum)]
    if isinstance(info, mi.UnionType):
        return [value for option in info.types for value in _allowed_values(option)]
    return []


def _field_names(info: mi.Type | None) -> list[str]:
    if isinstance(info, mi.Metadata):
        return _field_names(info.type)
    if isinstance(info, mi.StructType | mi.TypedDictType | mi.DataclassType):
        return [field.encode_name for field in info.fields]
    if isinstance(info, mi.UnionType):
        return next((names for t in info.types if (names := _field_names(t))), [])
    return []

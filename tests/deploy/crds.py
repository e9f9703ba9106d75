"""The Prometheus Operator's objects (ServiceMonitor, PrometheusRule) checked against the
OpenAPI schemas of their CRDs, vendored in tests/deploy/schemas (see each file's `source`),
strictly: a field the CRD does not declare is an error, as kubernetes_validate's strict mode
makes it for built-in kinds (the API server would drop it silently)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

SCHEMAS = Path(__file__).parent / "schemas"
GROUP_VERSION = "monitoring.coreos.com/v1"


@cache
def _validators() -> dict[str, jsonschema.protocols.Validator]:
    validators = {}
    for path in SCHEMAS.glob("monitoring.coreos.com_*.json"):
        document = json.loads(path.read_text())
        schema = _strict(document["schema"])
        validators[document["kind"]] = jsonschema.Draft7Validator(schema)
    return validators


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


def is_operator_kind(obj: dict[str, Any]) -> bool:
    return bool(obj.get("apiVersion") == GROUP_VERSION)


def problems(obj: dict[str, Any]) -> list[str]:
    """What is wrong with `obj` by its CRD's schema (an unknown kind is a problem too)."""
    validator = _validators().get(obj["kind"])
    if validator is None:
        return [f"no vendored CRD schema for {obj['kind']}"]
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]

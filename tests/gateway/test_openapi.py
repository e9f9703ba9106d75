"""The served OpenAPI document describes every route completely: a unique operationId, the
success schema, the credentials, and every error as application/problem+json."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.routes import HTTPRoute

from tests.conftest import free_port
from tests.support.gateway import gateway_settings, serve
from wee5_gateway.app import create_app
from wee5_gateway.core.problems import PROBLEM_TYPE_BASE
from wee5_gateway.core.protection import route_class

PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
BODY_METHODS = ("post", "put", "patch")
Operation = tuple[str, str, dict[str, Any]]


@pytest.fixture(scope="module")
async def document(database_url: str) -> dict[str, Any]:
    async with serve(gateway_settings(f"127.0.0.1:{free_port()}")) as gateway:
        response = await gateway.get("/schema/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_every_operation_has_a_unique_operation_id(document: dict[str, Any]) -> None:
    ids = [str(op.get("operationId") or "") for _, _, op in operations(document)]

    assert all(ids), [f"{m} {p}" for p, m, op in operations(document) if not op.get("operationId")]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_operation_documents_its_success_with_a_schema(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert successes, f"{method} {path} documents no 2xx"
        for status, response in successes.items():
            if status == "204":
                continue
            content = response.get("content")
            assert content, f"{method} {path} {status} has no content"
            assert all("schema" in media for media in content.values()), f"{method} {path}"


def test_every_error_is_documented_as_a_problem(document: dict[str, Any]) -> None:
    problem_schema = document["components"]["schemas"]["Problem"]
    assert set(problem_schema["required"]) >= {"type", "title", "status"}
    for path, method, op in operations(document):
        errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
        assert "500" in errors, f"{method} {path}"
        if "health" not in op.get("tags", []):
            assert any(s.startswith("4") for s in errors), f"{method} {path} documents no 4xx"
        for status, response in errors.items():
            assert list(response["content"]) == [PROBLEM], f"{method} {path} {status}"
            schema = response["content"][PROBLEM]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, f"{method} {path} {status}"


def test_limited_routes_document_429_and_body_routes_413(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        if route_class(method.upper(), path) is not None:
            assert "429" in op["responses"], f"{method} {path}"
        if method in BODY_METHODS:
            assert "413" in op["responses"], f"{method} {path}"
    assert "429" in document["paths"]["/webhooks/whop"]["post"]["responses"]


def test_security_schemes_are_defined_and_community_routes_name_theirs(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]

    assert schemes["BearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["BearerAuth"]["description"],
    }
    assert (schemes["ApiKeyAuth"]["type"], schemes["ApiKeyAuth"]["in"]) == ("apiKey", "header")
    assert schemes["ApiKeyAuth"]["name"] == "X-API-Key"
    assert (schemes["CookieAuth"]["in"], schemes["CookieAuth"]["name"]) == ("cookie", "wee5_access")
    for path, method, op in operations(document):
        for requirement in op.get("security", []):
            assert set(requirement) <= set(schemes), f"{method} {path}: {requirement}"
        if path.startswith("/api/v1/communities/"):
            assert op.get("security"), f"{method} {path} names no credentials"


def test_every_operation_has_a_description(document: dict[str, Any]) -> None:
    missing = [f"{m.upper()} {p}" for p, m, op in operations(document) if not op.get("description")]

    assert not missing, missing


def test_every_body_a_settings_patch_takes_is_documented_with_an_example(
    document: dict[str, Any],
) -> None:
    patches = [(p, op) for p, m, op in operations(document) if m == "patch"]

    assert len(patches) >= 5
    for path, op in patches:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema.get("examples") or "$ref" in schema, path


def test_the_problem_types_are_documented(document: dict[str, Any]) -> None:
    description = document["info"]["description"]
    for slug in ("not-possible-now", "forbidden", "history-private", "invalid-request"):
        assert f"`{PROBLEM_TYPE_BASE}{slug}`" in description, slug
    assert "about:blank" not in description


def test_most_operations_with_a_body_show_an_example(document: dict[str, Any]) -> None:
    bodies = [
        (f"{m} {p}", op["requestBody"]["content"]["application/json"]["schema"])
        for p, m, op in operations(document)
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    without = [name for name, schema in bodies if not schema.get("examples")]

    assert len(without) <= len(bodies) // 4, without


def test_every_body_example_is_a_valid_body() -> None:
    app = create_app(gateway_settings(f"127.0.0.1:{free_port()}"))
    checked = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None:
                continue
            for example in getattr(data.kwarg_definition, "examples", None) or ():
                msgspec.convert(example.value, data.annotation)  # raises when invalid
                checked += 1
    assert checked >= 25


async def test_the_docs_pages_load_only_same_origin_assets(database_url: str) -> None:
    async with serve(gateway_settings(f"127.0.0.1:{free_port()}")) as gateway:
        pages = {path: await gateway.get(path) for path in DOCS_PAGES}
        yaml_document = await gateway.get("/schema/openapi.yaml")
        assets = {url for page in pages.values() for url in _asset_urls(page.text)}
        fetched = {url: await gateway.get(url) for url in assets}

    for path, page in pages.items():
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html"), path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self';" in csp, path
        assert "<script>" not in page.text, path  # nothing inline: the CSP would refuse it
    assert any("swagger-ui-bundle.js" in url for url in assets)
    assert any("redoc.standalone.js" in url for url in assets)
    for url, response in fetched.items():
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        assert response.status_code == 200, url
    assert yaml_document.status_code == 200
    assert yaml_document.text.startswith(("openapi:", "components:", "info:"))
    assert "/api/v1/communities/{community_id}/xp-config:" in yaml_document.text


DOCS_PAGES = ("/schema", "/schema/swagger", "/schema/redoc")


def _asset_urls(html: str) -> list[str]:
    """Every script, stylesheet, icon and data-spec URL a docs page names."""
    return re.findall(r'(?:src|href|spec-url|data-spec-url)="([^"]+)"', html)


def test_document_lists_the_public_routes(document: dict[str, Any]) -> None:
    for path in (
        "/healthz",
        "/readyz",
        "/webhooks/whop",
        "/webhooks/discord/interactions",
        "/api/v1/communities/{community_id}/activities",
        "/api/v1/communities/{community_id}/activities/batch",
        "/api/v1/communities/{community_id}/leaderboard",
        "/api/v1/communities/{community_id}/members/{user_id}",
        "/api/v1/communities/{community_id}/members/me/discord-link",
        "/api/v1/discord/link/callback",
        "/api/v1/communities/{community_id}/discord-roles",
    ):
        assert path in document["paths"]
    assert not any(path.startswith("/schema") for path in document["paths"])

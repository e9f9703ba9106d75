"""The interactive API docs, served whole by the gateway: Swagger UI at /schema (and
/schema/swagger), Redoc at /schema/redoc, the document as JSON and YAML. Their scripts and
styles are vendored under web/static/vendor (pinned npm releases, licences beside them) and
started without inline script, so the docs work offline and their CSP allows only this origin."""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin, YamlRenderPlugin

STATIC = "/static"
SWAGGER_UI = f"{STATIC}/vendor/swagger-ui-5.35.0"
# Redoc 2: Redoc 3 draws its logo from cdn.redoc.ly, which no option turns off.
REDOC = f"{STATIC}/vendor/redoc-2.5.4"
_TITLE = "WEE5 API"


def _page(head: str, body: str) -> bytes:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_TITLE}</title>\n{head}\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    ).encode()


class SwaggerPage(OpenAPIRenderPlugin):
    """Swagger UI: browse and try every operation."""

    def __init__(self, *, path: str | list[str]) -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec_url = escape(self.get_openapi_json_route(request))
        return _page(
            f'<link rel="icon" href="{SWAGGER_UI}/favicon-32x32.png">\n'
            f'<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">',
            f'<div id="swagger-ui" data-spec-url="{spec_url}"></div>\n'
            f'<script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>\n'
            f'<script src="{STATIC}/docs/swagger-init.js"></script>',
        )


class RedocPage(OpenAPIRenderPlugin):
    """Redoc: the whole reference on one page, with the problem types and examples."""

    def __init__(self, *, path: str | list[str]) -> None:
        super().__init__(path=path)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        spec_url = escape(self.get_openapi_json_route(request))
        return _page(
            f'<link rel="icon" href="{SWAGGER_UI}/favicon-32x32.png">',
            f'<redoc spec-url="{spec_url}"></redoc>\n'
            f'<script src="{REDOC}/redoc.standalone.js"></script>',
        )


def docs_render_plugins() -> list[OpenAPIRenderPlugin]:
    return [
        SwaggerPage(path=["/", "/swagger"]),
        RedocPage(path="/redoc"),
        YamlRenderPlugin(path=["/openapi.yaml", "/openapi.yml"]),
    ]

"""Errors on pages: the same status and words as the JSON API's problem+json (one table,
core/problems.py), shown as a page, or as a fragment htmx swaps in. Outside Whop, a caller
without credentials is sent to the sign-in page and comes back afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import ExceptionHandlersMap

from wee5_gateway.core.problems import EXCEPTION_HANDLERS, Problem
from wee5_gateway.web.page import provide_page

Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]


def _as_page(problem_handler: Handler) -> Handler:
    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        answer = problem_handler(request, exc)
        problem = answer.content
        if not isinstance(problem, Problem):  # every problem handler answers a Problem
            raise TypeError(f"{problem_handler.__name__} answered {type(problem).__name__}")
        page = provide_page(request)
        if problem.status == 401 and not page.in_whop and request.method == "GET":
            if page.htmx:  # htmx follows this header with a whole-page visit
                return Response(
                    None, status_code=401, headers={"HX-Redirect": sign_in_url(request)}
                )
            return Redirect(sign_in_url(request), status_code=HTTP_303_SEE_OTHER)
        template: Template = page.render("error.html", status_code=problem.status, problem=problem)
        headers = {k: v for k, v in (answer.headers or {}).items() if k.lower() == "retry-after"}
        template.headers.update(headers)
        return template

    return handle


def sign_in_url(request: Request[Any, Any, Any]) -> str:
    target = request.scope["path"]
    if request.scope.get("query_string"):
        target += "?" + request.scope["query_string"].decode("latin-1")
    return "/app/sign-in?next=" + quote(target, safe="")


PAGE_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    exc_type: _as_page(handler) for exc_type, handler in EXCEPTION_HANDLERS.items()
}

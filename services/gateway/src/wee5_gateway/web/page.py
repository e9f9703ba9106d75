"""What every page handler shares: where the page is served (in Whop's iframe, or under
`/app` with the email sign-in), and `Page.render`, which answers a whole page or, for an htmx
request, only the part htmx swaps in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.response import Template

from wee5_gateway.core.access import Principal, known_principal

APP_PREFIX = "/app"


@dataclass(frozen=True)
class Page:
    """One page request. `prefix` is where the app's pages live for this caller: "" in Whop's
    iframe (`/experiences/…`, `/dashboard/…`), "/app" outside Whop."""

    request: Request[Any, Any, Any]
    prefix: str
    htmx: bool

    @property
    def in_whop(self) -> bool:
        return self.prefix != APP_PREFIX

    @property
    def principal(self) -> Principal | None:
        return known_principal(self.request)

    def member_url(self, community_id: str, rest: str = "") -> str:
        """A member view of the community: `/experiences/{id}…` (or under /app)."""
        return f"{self.prefix}/experiences/{community_id}{rest}"

    def admin_url(self, community_id: str, rest: str = "", *, company_id: str | None = None) -> str:
        """An admin view of the community: in Whop under the company's dashboard
        (`/dashboard/{company}/{id}…`: the company of the path, else `company_id`), outside
        Whop `/app/dashboard/{id}…`."""
        company_id = self.request.path_params.get("company_id") or company_id
        if self.in_whop and company_id:
            return f"/dashboard/{company_id}/{community_id}{rest}"
        return f"{APP_PREFIX}/dashboard/{community_id}{rest}"

    def render(self, template_name: str, *, status_code: int = 200, **context: Any) -> Template:
        """The template as a whole page, or, when htmx asks (and does not boost a link),
        as the fragment it swaps: templates extend `layout`, which is then the bare one."""
        fragment = self.htmx and self.request.headers.get("hx-boosted") != "true"
        return Template(
            template_name=template_name,
            status_code=status_code,
            context={
                "page": self,
                "layout": "_fragment.html" if fragment else "base.html",
                **context,
            },
        )


def provide_page(request: Request[Any, Any, Any]) -> Page:
    path: str = request.scope["path"]
    prefix = APP_PREFIX if path == APP_PREFIX or path.startswith(APP_PREFIX + "/") else ""
    return Page(request, prefix, request.headers.get("hx-request") == "true")

"""What the gateway process keeps out besides `wee5_kit.lean`'s list. Imported first by
`python -m wee5_gateway`.

- rich and pygments (3.6 MB of resident memory), which structlog (pretty tracebacks for
  consoles) and httpx (its command line) import when installed. The gateway draws neither;
  xp's tasks draw their progress bars with rich, so the kit's list cannot hold them.
- Litestar's Pydantic plugins, which it adds to every app when pydantic is installed: they
  import `pydantic.v1` and build schemas for pydantic models, about 2 MB. The gateway's routes
  take and return msgspec structs and dataclasses, never pydantic models (pydantic reads the
  settings only). Litestar leaves the plugins out when importing them raises its
  `MissingDependencyException`, as it does where pydantic is not installed.
- Litestar's OpenTelemetry plugin, which every app imports (with the ASGI instrumentation,
  35 modules, about 1 MB) to look for an OpenTelemetry middleware among the app's; the
  gateway wraps its app in that middleware itself, and only while tracing is on
  (`core.observability.traced`). Litestar takes the plugin's ImportError as "not installed".
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

from wee5_kit.lean import keep_out

_PYDANTIC_PLUGINS = "litestar.plugins.pydantic"


class _WithoutPydanticPlugins(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        # Its modules are reached through the package, so refusing the package is enough.
        if fullname == _PYDANTIC_PLUGINS:
            from litestar.exceptions import MissingDependencyException

            raise MissingDependencyException("pydantic")
        return None


keep_out("rich", "pygments", "litestar.plugins.opentelemetry")
sys.meta_path.insert(0, _WithoutPydanticPlugins())

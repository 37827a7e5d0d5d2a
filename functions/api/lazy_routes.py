"""Cold start: the operations routers are imported when a request first needs one.

Most containers of the api serve card lookups only, yet importing the operations routers
(files, rejects, stuck cards, partner health, phone conflicts) and what they import (their
Pydantic models, `cardstatus.ops`, `.partners`, `.filecards` and their SQL) was a large part
of the cold import, most of all without bytecode (`python -m bench.coldstart`).

`LazyRoutesResolver.include_lazily(module, *args)` records a router module instead of
importing it; the first time a request matches no route registered so far, every recorded
module is imported and its `register(app, *args)` called, then the request is routed again.
The document stays the same: the included routes take the place in the route lists the
router had when it was recorded (routes are matched static before dynamic, each list in
order; the OpenAPI document lists paths in that order), and `get_openapi_schema` includes
everything first. A request that a registered route answers pays nothing for this (no
extra check on that path); the import happens once per container (SnapStart: in the
before-snapshot warm-up, whose requests include operations routes).
"""

from __future__ import annotations

import importlib
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder


class LazyRoutesResolver(APIGatewayRestResolver):
    """An APIGatewayRestResolver with routers included on first need (see the module)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # (module, register's arguments, place in _static_routes, place in _dynamic_routes)
        self._lazy_routers: list[tuple[str, tuple[Any, ...], int, int]] = []

    def include_lazily(self, module: str, *args: Any) -> None:
        """Remember to call `module.register(self, *args)` when a request first needs it."""
        place = (len(self._static_routes), len(self._dynamic_routes))
        self._lazy_routers.append((module, args, *place))

    def include_lazy_routers(self) -> bool:
        """Import and register every remembered router now; False when there was none."""
        pending, self._lazy_routers = self._lazy_routers, []
        moved_static = moved_dynamic = 0
        for module, args, static_at, dynamic_at in pending:
            static_end, dynamic_end = len(self._static_routes), len(self._dynamic_routes)
            importlib.import_module(module).register(self, *args)
            moved_static += _move(self._static_routes, static_end, static_at + moved_static)
            moved_dynamic += _move(self._dynamic_routes, dynamic_end, dynamic_at + moved_dynamic)
        return bool(pending)

    def _handle_not_found(self, method: str, path: str) -> ResponseBuilder:
        if self._lazy_routers and self.include_lazy_routers():
            return self._resolve()  # routed again, now with every route
        return super()._handle_not_found(method, path)

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        self.include_lazy_routers()
        return super().get_openapi_schema(*args, **kwargs)


def _move(routes: list[Any], start: int, to: int) -> int:
    """Move routes[start:] (just registered) to index `to`; how many were moved."""
    added = routes[start:]
    del routes[start:]
    routes[to:to] = added
    return len(added)

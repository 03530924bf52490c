"""Routers joined into one flat route table, as FastAPI did before 0.137.

Since 0.137, `include_router` keeps each included router as a node that FastAPI walks on
every request (twice: to match, then to handle), recomputing its candidates as it goes. With
pesan's dozen routers that walk cost more CPU than the whole send of a chat message
(docs/decisions.md, "One flat route table"). `include_flat` instead copies each route into
the target with the prefix and responses applied, so a request meets a plain list of
routes matched by one regular expression each. The OpenAPI document is the same.
"""

import inspect
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute

# What `add_api_route` takes that a route keeps as an attribute of the same name.
_ROUTE_FIELDS = [
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name in inspect.signature(APIRoute.__init__).parameters
    and name not in ("self", "path", "endpoint")
]


def include_flat(
    target: APIRouter,
    router: APIRouter,
    *,
    prefix: str = "",
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> None:
    """Add `router`'s routes to `target`, with `prefix` and `responses` applied. A router
    that includes another is refused: it would bring back the node this avoids."""
    for route in router.routes:
        if hasattr(route, "original_router"):  # FastAPI's included-router node
            raise TypeError(
                f"{router!r} includes another router; flatten it with include_flat instead"
            )
        _copy(target, route, prefix, responses or {})


def _copy(
    target: APIRouter,
    route: BaseRoute,
    prefix: str,
    responses: dict[int | str, dict[str, Any]],
) -> None:
    if isinstance(route, APIRoute):
        fields = {name: getattr(route, name) for name in _ROUTE_FIELDS}
        fields["responses"] = {**responses, **(route.responses or {})}
        target.add_api_route(
            prefix + route.path,
            route.endpoint,
            route_class_override=type(route),
            **fields,
        )
    elif isinstance(route, APIWebSocketRoute):
        target.add_api_websocket_route(
            prefix + route.path,
            route.endpoint,
            name=route.name,
            dependencies=route.dependencies,
        )
    else:
        raise TypeError(f"cannot flatten {route!r}: add it to the app directly")

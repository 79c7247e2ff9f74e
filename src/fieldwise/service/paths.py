"""The request path as the app's router sees it: below its mount point or ``root_path``.

Why one function: the token check, the size caps and the JSON shortcut all decide by path,
and each must decide on the path the router matches. Mounted (``Mount("/api", app)``) or
behind ``uvicorn --root-path /api``, ``scope["path"]`` is the full ``/api/v1/...`` while the
router matches ``/v1/...``; a check on the full path would skip the token while the route
still answered.
"""

from __future__ import annotations

from starlette.types import Scope

#: every route below this prefix needs the token (when one is set)
API_PREFIX = "/v1/"


def route_path(scope: Scope) -> str:
    """The path below the app's mount point, as Starlette's router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def is_api_path(scope: Scope) -> bool:
    """Whether the request is for one of the ``/v1/`` routes, however the app is mounted."""
    return route_path(scope).startswith(API_PREFIX)

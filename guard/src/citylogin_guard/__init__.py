"""citylogin-guard: protect an app's API with citylogin access tokens (docs/guides/protect-your-api.md).

Imports neither Flask nor any ASGI framework: `Guard.init_app` and `Guard.required` import the Flask
support (and so Flask) when called, and `GuardMiddleware` is plain ASGI. The arrows point one way:
flask_support and asgi stand on guard.TokenGuard, which knows no framework."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, TypeVar

from citylogin_guard.asgi import GuardMiddleware
from citylogin_guard.errors import Code, Unauthorized, Unavailable
from citylogin_guard.guard import Principal, TokenGuard
from citylogin_guard.replay import MemoryReplayStore, ReplayStore

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Code", "Guard", "GuardMiddleware", "MemoryReplayStore", "Principal", "ReplayStore", "Unauthorized",
           "Unavailable"]

View = TypeVar("View", bound=Callable[..., Any])


class Guard(TokenGuard):
    """The token guard with Flask's two helpers; an app on ASGI passes it to GuardMiddleware."""

    def init_app(self, app: Flask) -> None:
        """Renders Unauthorized as problem+json in `app` (401; 503 with Retry-After for Unavailable),
        and keeps the guard in app.extensions."""
        from citylogin_guard import flask_support
        flask_support.init_app(self, app)

    def required(self, view: View) -> View:
        """Flask view decorator: refuses the request with 401 (503 while citylogin cannot be reached
        to judge the token) unless verify() passes; the principal is in `flask.g.citylogin`."""
        from citylogin_guard import flask_support
        return flask_support.required(self, view)

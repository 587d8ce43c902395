"""Protection by the proxy in front: nginx asked citylogin's GET /session/check before forwarding
(deploy/nginx/citylogin-forward-auth.conf.template) and passes who the caller is in X-Citylogin-*
headers. The app believes those headers, so it must be reachable through that proxy only."""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, cast

from flask import Flask, g, request

from refusals import Principal, Unauthorized, refusal_response

View = TypeVar("View", bound=Callable[..., Any])


class ForwardAuth:
    """The same interface as citylogin_guard.Guard's Flask helpers: init_app(app), @required, g.citylogin."""

    def init_app(self, app: Flask) -> None:
        app.register_error_handler(Unauthorized, refusal_response)

    def required(self, view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.citylogin = principal_from_headers()
            return view(*args, **kwargs)
        return cast(View, guarded)

    def close(self) -> None:
        """Nothing runs in the background."""


def principal_from_headers() -> Principal:
    user, session, device = (request.headers.get(f"X-Citylogin-{name}", "") for name in ("User", "Session", "Device"))
    if not (user and session and device):
        # Only a request that bypassed the proxy arrives without them: the proxy refuses the rest.
        raise Unauthorized("invalid_token", "This API is reached through the proxy that checks the session.")
    return Principal(user_uuid=user, session_id=session, device_id=device)

"""Flask: `guard.init_app(app)` and `@guard.required`. Imported only when an app uses them."""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from flask import Flask, Response, g, json, request

from citylogin_guard.errors import Unauthorized

if TYPE_CHECKING:
    from citylogin_guard.guard import Guard

View = TypeVar("View", bound=Callable[..., Any])


def init_app(guard: Guard, app: Flask) -> None:
    app.extensions["citylogin_guard"] = guard
    app.register_error_handler(Unauthorized, refusal_response)


def required(guard: Guard, view: View) -> View:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            g.citylogin = guard.verify(request.headers.get("Authorization"), dpop=request.headers.get("DPoP"),
                                       method=request.method, url=request.base_url)
        except Unauthorized as refusal:
            return refusal_response(refusal)
        return view(*args, **kwargs)
    return cast(View, guarded)


def refusal_response(refusal: Unauthorized) -> Response:
    response = Response(json.dumps(refusal.problem()), status=refusal.status, mimetype="application/problem+json")
    response.headers["WWW-Authenticate"] = refusal.www_authenticate()
    response.headers["Cache-Control"] = "no-store"
    return response

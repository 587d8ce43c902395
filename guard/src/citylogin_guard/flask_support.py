"""Flask: `guard.init_app(app)` and `@guard.required`, for any TokenGuard. Imported only when an app
uses them; the guard itself never imports this module."""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar, cast

from flask import Flask, Response, after_this_request, g, json, request

from citylogin_guard.errors import Unauthorized
from citylogin_guard.guard import TokenGuard

View = TypeVar("View", bound=Callable[..., Any])


def init_app(guard: TokenGuard, app: Flask) -> None:
    app.extensions["citylogin_guard"] = guard
    app.register_error_handler(Unauthorized, refusal_response)


def required(guard: TokenGuard, view: View) -> View:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        proof = request.headers.get("DPoP")
        try:
            g.citylogin = guard.verify(request.headers.get("Authorization"), dpop=proof, method=request.method,
                                       url=request.base_url)
        except Unauthorized as refusal:
            return refusal_response(refusal)
        if proof:  # the newest nonce for the client's next proof, should its clock be off (RFC 9449 §8.2)
            after_this_request(functools.partial(_with_nonce, guard.dpop_nonce()))
        return view(*args, **kwargs)
    return cast(View, guarded)


def _with_nonce(nonce: str, response: Response) -> Response:
    response.headers.setdefault("DPoP-Nonce", nonce)
    return response


def refusal_response(refusal: Unauthorized) -> Response:
    response = Response(json.dumps(refusal.problem()), status=refusal.status, mimetype="application/problem+json")
    response.headers.update(refusal.headers())
    return response

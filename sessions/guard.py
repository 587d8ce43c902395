"""The one gate of every protected route of every service: JWT check, then one strongly
consistent read of the session (SPEC §4). Views read the caller from `current_principal()`."""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import g, request

from common.context import ctx
from sessions import service
from sessions.models import Principal


def _bearer_token(*, allow_query: bool) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # EventSource cannot set headers, so the event stream may take the token as a parameter.
    if allow_query and request.args.get("access_token"):
        return request.args["access_token"]
    raise service.InvalidToken("A Bearer access token is required.")


def authenticate_request(*, allow_query_token: bool = False, accept_ended_reason: str | None = None) -> Principal:
    """Check the request's Bearer token now (for routes where it is optional)."""
    g.principal = service.authenticate(ctx(), access_token=_bearer_token(allow_query=allow_query_token),
                                       accept_ended_reason=accept_ended_reason)
    return g.principal


def require_session(view: Callable | None = None, *, allow_query_token: bool = False,
                    accept_ended_reason: str | None = None):
    """Decorator: 401 unless the request carries a valid token of a live session (or of one
    ended with `accept_ended_reason`)."""
    def decorate(inner: Callable) -> Callable:
        @wraps(inner)
        def wrapper(*args, **kwargs):
            authenticate_request(allow_query_token=allow_query_token, accept_ended_reason=accept_ended_reason)
            return inner(*args, **kwargs)
        return wrapper
    return decorate(view) if view else decorate


def current_principal() -> Principal:
    return g.principal

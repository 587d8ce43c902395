"""The one gate of every protected route of every service: JWT check, the DPoP proof of a bound
token (SPEC §12), then one strongly consistent read of the session (SPEC §4). Views read the
caller from `current_principal()`."""
from __future__ import annotations

from functools import wraps
from typing import Callable, ParamSpec, TypeVar, overload
from urllib.parse import urlsplit

from flask import Response, after_this_request, g, request

from sessions import binding, service
from sessions.binding import ProofOffer
from sessions.models import Principal
from common.runtime.context import ctx

P = ParamSpec("P")
R = TypeVar("R")

NONCE_HEADER = "DPoP-Nonce"


def _credentials(*, allow_query: bool) -> tuple[str, str]:
    """(scheme, token) of the request's Authorization: Bearer, or DPoP (RFC 9449 §7.1)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    for known in ("Bearer", binding.DPOP):
        if scheme.lower() == known.lower() and token.strip():
            return known, token.strip()
    # EventSource cannot set headers, so a bearer session's event stream may take the token as a
    # parameter; a bound token there is refused (it comes without its proof).
    if allow_query and request.args.get("access_token"):
        return "Bearer", request.args["access_token"]
    raise service.InvalidToken("A Bearer or DPoP access token is required.")


def credentials() -> tuple[str, str]:
    """(scheme, token) of the request's Authorization header (Bearer or DPoP), else 401 invalid_token."""
    return _credentials(allow_query=False)


def _hand_out_nonce(response: Response) -> Response:
    context = ctx()
    response.headers[NONCE_HEADER] = binding.current_nonce(context.refresh_secrets, context.epoch())
    return response


def proof_offer(*, method: str | None = None, urls: tuple[str, ...] | None = None) -> ProofOffer | None:
    """The request's DPoP proof for the request itself (or for the one `method` and `urls` name);
    None if it has none. A request with a proof gets the server's current DPoP-Nonce back."""
    proof = request.headers.get("DPoP")
    if proof is None:
        return None
    after_this_request(_hand_out_nonce)
    return ProofOffer(proof=proof, method=method or request.method, urls=urls or own_urls())


def own_urls() -> tuple[str, ...]:
    """The URLs this request may be known by: as this server saw it, and under the public address
    (behind a TLS proxy the client says https://<public host>/...)."""
    urls = [request.base_url]
    public = ctx().settings.public_url
    if public:
        origin = urlsplit(public)
        urls.append(f"{origin.scheme}://{origin.netloc}{request.path}")
    return tuple(urls)


def forwarded_offer() -> ProofOffer | None:
    """/session/check (forward auth): the proof covers the request the proxy is checking, which the
    proxy names in X-Forwarded-Method, -Proto, -Host and -Uri (the nginx template sets all four)."""
    headers = request.headers
    method, uri = headers.get("X-Forwarded-Method"), headers.get("X-Forwarded-Uri")
    if not (method and uri):
        return proof_offer()
    scheme = headers.get("X-Forwarded-Proto", request.scheme)
    host = headers.get("X-Forwarded-Host", request.host)
    return proof_offer(method=method, urls=(f"{scheme}://{host}{urlsplit(uri).path}",))


def authenticate_request(*, allow_query_token: bool = False, accept_ended_reason: str | None = None,
                         forwarded: bool = False, along: service.Along | None = None) -> Principal:
    """Check the request's access token (and DPoP proof) now (for routes where it is optional, or
    that read other records `along` with the session: sessions.service.authenticate)."""
    scheme, token = _credentials(allow_query=allow_query_token)
    offer = forwarded_offer() if forwarded else proof_offer()
    g.principal = service.authenticate(ctx(), access_token=token, scheme=scheme, offer=offer,
                                       accept_ended_reason=accept_ended_reason, spend_last=forwarded, along=along)
    return g.principal


def vouch_request() -> service.Vouched:
    """Check the request's access token (and DPoP proof) without reading its session, for a route
    whose one write carries the session's check (sessions.service.vouch)."""
    scheme, token = _credentials(allow_query=False)
    return service.vouch(ctx(), access_token=token, scheme=scheme, offer=proof_offer())


@overload
def require_session(view: Callable[P, R], *, allow_query_token: bool = False,
                    accept_ended_reason: str | None = None, forwarded: bool = False) -> Callable[P, R]: ...


@overload
def require_session(view: None = None, *, allow_query_token: bool = False, accept_ended_reason: str | None = None,
                    forwarded: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def require_session(view: Callable[P, R] | None = None, *, allow_query_token: bool = False,
                    accept_ended_reason: str | None = None,
                    forwarded: bool = False) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: 401 unless the request carries a valid token of a live session (or of one
    ended with `accept_ended_reason`). `forwarded`: the proof is for the request a proxy names."""
    def decorate(inner: Callable[P, R]) -> Callable[P, R]:
        @wraps(inner)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            authenticate_request(allow_query_token=allow_query_token, accept_ended_reason=accept_ended_reason,
                                 forwarded=forwarded)
            return inner(*args, **kwargs)
        return wrapper
    return decorate(view) if view else decorate


def current_principal() -> Principal:
    return g.principal

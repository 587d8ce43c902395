"""Pushed Authorization Requests (RFC 9126, SPEC §14): the app POSTs its authorization request to
/oidc/par, authenticated as at the token endpoint, and gets a one-time `request_uri` (60 s) that the
browser then carries to /oidc/authorize instead of the parameters: they never pass through the
browser, so nobody on the way can change or read them. The request is checked here as /oidc/authorize
checks it (errors are JSON, never a redirect); an app added with --require-par signs in no other way."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError

from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite, write_all
from common.database.one_time_tokens import OneTimeTokenStore
from oidc.core import refusals
from oidc.core.store import PushedRequestStore

PAR_TTL = 60  # seconds (RFC 9126 §2.2: short-lived)
PAR_PURPOSE = "oidc_par"
CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
USED_OR_EXPIRED = "request_uri is unknown, used or expired: push the request again."
REQUEST_URI_UNKNOWN = "request_uri_unknown"  # the refusal's reason (oidc.core.refusals)
CLIENT_AUTH_FIELDS = ("client_secret", "client_assertion", "client_assertion_type")


def stored_params(tokens: OneTimeTokenStore, *, form: dict[str, str], client_id: str, now: int,
                  counter: GuardedWrite, spending: GuardedWrite | None = None) -> dict[str, Any]:
    """Keep the checked request of `client_id` (its parameters without the client's credentials), in one
    transaction with `counter` (its address's count: oidc.core.request_limits, whose refusal it raises) and
    `spending` (a request object's jti, if it came as one); the answer RFC 9126 §2.2 gives:
    {request_uri, expires_in}."""
    params = {k: v for k, v in form.items() if k not in CLIENT_AUTH_FIELDS}
    handle = secrets.token_urlsafe(32)
    kept = PushedRequestStore(tokens).create_item(digest=token_digest(handle, purpose=PAR_PURPOSE), params=params,
                                                  client_id=client_id, expires_epoch=now + PAR_TTL)
    write_all(tokens.client, [*([spending] if spending else []), counter,
                              GuardedWrite(item=kept, refusal=lambda: RuntimeError("a new request_uri"))])
    return {"request_uri": REQUEST_URI_PREFIX + handle, "expires_in": PAR_TTL}


def checked_form(form: dict[str, str], client_id: str) -> dict[str, str]:
    """The pushed parameters as the authorization request they stand for; InvalidRequestError for a
    `request_uri` inside (§2.1) or a client_id other than the authenticated client's."""
    if "request_uri" in form:
        raise InvalidRequestError("A pushed request cannot itself name a request_uri.")
    if form.get("client_id", client_id) != client_id:
        raise InvalidRequestError("client_id differs from the authenticated client.")
    # The app's credential authenticated this request; it is not part of the one it stands for, and
    # no secret or assertion is stored.
    kept = {name: value for name, value in form.items() if name not in CLIENT_CREDENTIALS}
    return {**kept, "client_id": client_id}


def names_pushed(request_uri: object) -> bool:
    """Whether a request_uri is this server's (RFC 9126 §2.2), rather than an app's by reference (RFC 9101)."""
    return isinstance(request_uri, str) and request_uri.startswith(REQUEST_URI_PREFIX)


@dataclass(frozen=True)
class PushedRequest:
    """A pushed request presented at /oidc/authorize: its parameters, and the write that uses it up."""
    params: dict[str, str]
    spending: GuardedWrite


def presented_request(tokens: OneTimeTokenStore, *, request_uri: str, client_id: str | None,
                      now: int) -> PushedRequest:
    """The parameters a `request_uri` stands for, while it is its own client's (SPEC §14: a failed attempt,
    by anyone, leaves it to its client): nothing is spent until the caller's transaction runs `spending`
    with the authorization request kept (one authorization request each, §4); InvalidRequestError for one
    that is unknown, used, expired or another client's."""
    if not request_uri.startswith(REQUEST_URI_PREFIX) or not client_id or len(request_uri) > 200 \
            or len(client_id) > 64:
        raise refusals.because(InvalidRequestError("request_uri is not one this server issued."), REQUEST_URI_UNKNOWN)
    store = PushedRequestStore(tokens)
    digest = token_digest(request_uri.removeprefix(REQUEST_URI_PREFIX), purpose=PAR_PURPOSE)
    params = store.get(digest=digest, client_id=client_id, now=now)
    if params is None:
        raise refusals.because(InvalidRequestError(USED_OR_EXPIRED), REQUEST_URI_UNKNOWN)
    return PushedRequest(params=params, spending=GuardedWrite(
        item=store.spend_item(digest=digest, client_id=client_id, now=now),
        refusal=lambda: refusals.because(InvalidRequestError(USED_OR_EXPIRED), REQUEST_URI_UNKNOWN)))

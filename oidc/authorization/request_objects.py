"""An authorization request carried by a request object (RFC 9101, OpenID Connect Core §6; SPEC §14): by value
(`request`) or by reference (`request_uri`, one the app registered: oidc.registration.request_uris; fetched by
oidc.authorization.request_uri_fetch) at /oidc/authorize, and by value inside a pushed request (RFC 9126 §3).
The object is read, its algorithm and signature checked with the app's registered keys and its claims for this
app, this provider and now (oidc.authorization.request_object_checks); its parameters then win over the
query's (OIDC Core §6.3.3). An app that requires signed objects (RFC 9101 §10.5) has its query's parameters
ignored but the client_id, as a pushed object's form is (RFC 9126 §3): only what it signed counts. Each
object's `jti` is spent by one conditional write, in the transaction that keeps the request it carries, so it
is used once on every host.

Why not Authlib's rfc9101 extension: it replaces the query by the object's claims (RFC 9101) where OpenID
Connect merges them, answers its errors with the query's state, requires client_id inside and checks no
iss, aud, exp or jti; and it would fetch a request_uri inside Authlib's grant lookup, which complete()
runs again. The steps here use the same library underneath (joserfc) and Authlib's errors.

An error about an object is answered as the object asked: its redirect URI if the app registered it (else
the query's, if registered), its response_mode and its state, once the object could be read."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc9101.errors import InvalidRequestObjectError, InvalidRequestUriError
from joserfc.jwk import KeySet
from werkzeug.datastructures import MultiDict

from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite
from relying_parties import outbound
from relying_parties.models import FAPI2
from oidc.core import refusals
from oidc.authorization import checks as request_checks
from oidc.registration import request_uris
from oidc.authorization.request_uri_fetch import REQUEST_OBJECT_FETCHES, RequestObjectFetches
from oidc.registration.client_keys import app_key_set
from oidc.core.context import issuer, one_time_tokens
from oidc.core.models import Client
from oidc.authorization.request_object_checks import (MAX_LIFETIME, LEEWAY, RequestObject, check_algorithm,
                                                      check_claims, check_signature, object_params, read_object)
from common.outbound.key_sets import KeysUnavailable
from common.runtime.context import AppContext

Params = request_checks.Params
SPENT_KIND, SPENT_PURPOSE = "request_object", "request_object_jti"
_REPLY = "reply_params"  # the attribute of an error that names the parameters it is answered by


@dataclass(frozen=True)
class Carried:
    """An authorization request a request object carried: its parameters (the object's over the query's),
    whether the object was signed, and the write that spends its jti (None: it had none)."""

    params: Params
    signed: bool
    spending: GuardedWrite | None


@dataclass(frozen=True)
class _Answer:
    """Where a refusal goes: the parameters it is answered by (state, response_mode) and the redirect URI
    the app registered (None: an error page)."""

    params: Params
    redirect_uri: str | None

    def answered(self, error: OAuth2Error) -> OAuth2Error:
        error.redirect_uri = self.redirect_uri
        setattr(error, _REPLY, self.params)
        return error


def reply_params(error: OAuth2Error, sent: Params) -> Params:
    """The parameters a refusal is answered by: the object's over the query's when it was about a
    readable request object, else `sent`."""
    answered = getattr(error, _REPLY, None)
    return answered if isinstance(answered, MultiDict) else sent


def carried(ctx: AppContext, sent: Params, *, client: Client | None) -> Carried | None:
    """The request a `request` or (non-PAR) `request_uri` of /oidc/authorize carries, None if it has
    neither. An OAuth2Error to the app's registered redirect URI, or without one (an error page) while
    the app or its redirect URI is unknown."""
    if "request" not in sent and "request_uri" not in sent:
        return None
    if client is None:
        raise refusals.because(InvalidRequestError("client_id names no app that signs in here."), "client_unknown")
    query = _Answer(sent, _registered(client, sent.get("redirect_uri")))
    try:
        request_checks.check_request_object(sent)
        read = read_object(sent["request"] if "request" in sent else _referenced(ctx, client, sent["request_uri"]))
    except OAuth2Error as error:
        raise query.answered(error) from None
    answer = _answer_of(sent, read, client)
    try:
        params = verified_params(ctx, read, client=client, client_id=sent.get("client_id"),
                                 response_type=sent.get("response_type"))
        merged = _merged(sent, params, signed_only=client.app.oidc().require_signed_request_object)
        request_checks.check_target(merged)
    except OAuth2Error as error:
        raise answer.answered(error) from None
    return Carried(params=merged, signed=read.signed, spending=_spending(ctx, client.client_id, read, answer))


def pushed(ctx: AppContext, form: Params, *, client: Client) -> Carried | None:
    """The request a pushed request's `request` carries (RFC 9126 §3): the object's parameters alone with
    the authenticated client's client_id; None without one. OAuth2Errors are the endpoint's JSON."""
    if "request" not in form:
        return None
    request_checks.check_request_object(form)
    read = read_object(form["request"])
    params = verified_params(ctx, read, client=client, client_id=client.client_id,
                             response_type=form.get("response_type"))
    kept = MultiDict({**params, "client_id": client.client_id})
    request_checks.check_target(kept)
    return Carried(params=kept, signed=read.signed, spending=_spending(ctx, client.client_id, read, None))


def verified_params(ctx: AppContext, read: RequestObject, *, client: Client, client_id: str | None,
                    response_type: str | None) -> dict[str, str]:
    """The parameters of an object that passes every check for `client` (oidc.authorization.request_object_checks)."""
    oidc = client.app.oidc()
    check_algorithm(read, oidc)
    if read.signed:
        check_signature(read, app_keys(ctx, client, kid=read.header.get("kid")))
    check_claims(read, client_id=client.client_id, issuer=issuer(ctx), now=ctx.epoch(),
                 strict=oidc.require_signed_request_object or oidc.profile == FAPI2)
    return object_params(read, client_id=client_id, response_type=response_type)


def app_keys(ctx: AppContext, client: Client, *, kid: Any = None) -> KeySet:
    """The app's public keys, which sign its request objects: its `jwks`, or those at its `jwks_uri`
    (fetched again for a kid they lack, as for its client assertions)."""
    try:
        return app_key_set(ctx, client.app, kid=kid if isinstance(kid, str) else None)
    except KeysUnavailable:
        raise refusals.because(InvalidRequestObjectError("This app's keys (jwks or jwks_uri) to check its request "
                                                         "objects with are not to be had."),
                               "request_object_key") from None


def _referenced(ctx: AppContext, client: Client, request_uri: str) -> str:
    """The object at a request_uri the app registered (compared as parsed URLs, the fragment aside)."""
    registered = request_uris.registered_match(client.app.oidc().request_uris, request_uri)
    if registered is None:
        raise refusals.because(InvalidRequestUriError("request_uri is not one this app registered (or a pushed "
                                                      "request's)."), "request_uri_unregistered")
    try:
        fetches = ctx.slots.get_or_make(REQUEST_OBJECT_FETCHES, RequestObjectFetches)
        return fetches.object_at(registered, client_id=client.client_id,
                                 private_allowed=outbound.private_allowed(ctx.settings, client.app))
    except OAuth2Error as error:
        raise refusals.because(error, "request_uri_fetch") from None


def _registered(client: Client, redirect_uri: Any) -> str | None:
    return redirect_uri if isinstance(redirect_uri, str) and client.check_redirect_uri(redirect_uri) else None


def _answer_of(sent: Params, read: RequestObject, client: Client) -> _Answer:
    """How a refusal of a readable object is answered: its string claims over the query's parameters,
    to its redirect URI if the app registered it, else the query's if the app registered that."""
    shown = MultiDict(sent)
    for name, value in read.claims.items():
        if isinstance(value, str):
            shown.setlist(name, [value])
    redirect_uri = _registered(client, read.claims.get("redirect_uri")) or _registered(client, sent.get("redirect_uri"))
    return _Answer(shown, redirect_uri)


def _merged(sent: Params, params: dict[str, str], *, signed_only: bool) -> Params:
    """OIDC Core §6.3.3: the query's parameters with the object's in their place; for an app that
    requires signed objects, the object's alone and the client_id (RFC 9101 §5)."""
    merged: Params = MultiDict({"client_id": sent["client_id"]}) if signed_only else MultiDict(sent)
    for name in ("request", "request_uri"):
        merged.poplist(name)
    for name, value in params.items():
        merged.setlist(name, [value])
    return merged


def _spending(ctx: AppContext, client_id: str, read: RequestObject, answer: _Answer | None) -> GuardedWrite | None:
    """The write that spends the object's jti (of this app) until it expires: refused if it was spent."""
    jti = read.claims.get("jti")
    if jti is None:
        return None
    now = ctx.epoch()
    expires = math.ceil(read.claims.get("exp", now + MAX_LIFETIME)) + LEEWAY
    item = one_time_tokens(ctx).create_item(digest=token_digest(f"{client_id}\n{jti}", purpose=SPENT_PURPOSE),
                                            kind=SPENT_KIND, expires_epoch=expires)

    def replayed() -> OAuth2Error:
        error = refusals.because(InvalidRequestObjectError("This request object was used before: each is used "
                                                           "once (its jti)."), "request_object_replayed")
        return answer.answered(error) if answer else error
    return GuardedWrite(item=item, refusal=replayed)

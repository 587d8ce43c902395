"""The OpenID Provider's flows (SPEC §14), read top-down: an app's authorization request waits for
the person's browser, which signs in on its device in citylogin's own web UI and finishes it; the app
then redeems the code at the token endpoint and reads the person at userinfo. Authlib checks the
protocol (oidc.server); this module hands it citylogin's apps, sessions and stores."""
from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import replace
from typing import Any, cast
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import redirect
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from accounts import service as accounts
from apps import service as apps
from accounts.models import AccountRecord
from apps.models import AppRecord
from apps.registry import current_app
from common.background import background
from common.batch_read import KeyRead, read_together
from common.context import AppContext
from common.crypto import digests_equal, token_digest
from common.errors import ApiError, ErrorCode, Forbidden, Unauthorized
from common.guarded_write import GuardedWrite, write_all
from common.jwt_keys import ALGORITHM, TOKEN_TYPE, TokenError
from common.one_time_tokens import OneTimeTokenStore
from oidc import claims as user_claims
from oidc import codes, consents, grants, par, refresh, request_checks, token_binding
from oidc import logout as rp_logout
from oidc.models import SCOPES, AppRefresh, Client, Code, HeldGrant, Interaction, Redirect, SignedIn
from oidc.server import CodeGrant, Provider
from oidc.store import CodeNotSpent, GrantStore, RequestStore
from sessions import service as sessions
from sessions.binding import ProofOffer
from sessions.models import Principal

REQUEST_TTL = 600  # seconds the person has to sign in (the pairing token's 10 minutes)
REQUEST_PURPOSE = "oidc_request"


class AuthorizationRequestUnknown(ApiError):
    status, code = 400, ErrorCode.OIDC_REQUEST_UNKNOWN
    detail = "This sign-in request is unknown, finished or expired: start again from the app."


class LoginRequired(Unauthorized):
    code, detail = ErrorCode.LOGIN_REQUIRED, "The app asks for a fresh sign-in on this device."


class ConsentRequired(Forbidden):
    code, detail = ErrorCode.CONSENT_REQUIRED, "Allow the app to use your account first."


class AuthorizationRefused(ApiError):
    status, code = 400, ErrorCode.INVALID_REQUEST
    detail = "The app's sign-in request is not valid."


# --- the one Provider of an app context ------------------------------------------------------

_providers_lock = threading.Lock()


def provider(ctx: AppContext) -> Provider:
    with _providers_lock:
        if ctx.oidc_provider is None:
            ctx.oidc_provider = Provider(ctx, hooks=_Hooks(ctx))
    return cast(Provider, ctx.oidc_provider)


def issuer(ctx: AppContext) -> str:
    return ctx.public_url().rstrip("/")


def _epoch(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


def _tokens(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def grant_store(ctx: AppContext) -> GrantStore:
    return GrantStore(ctx.dynamodb, ctx.tables.oidc_grants)


ADMIN_AUDIENCE = "/admin"  # after the issuer: the admin API is the only place such a token counts


def admin_access_token(ctx: AppContext, app: AppRecord, *, now: int) -> dict[str, Any]:
    """The client-credentials grant's answer (SPEC §15): a Bearer token naming the app, for the admin API
    alone. The role it acts with is read from the app's record on every call, not from the token."""
    ttl = ctx.settings.access_token_ttl
    body = {"iss": issuer(ctx), "sub": app.client_id, "aud": issuer(ctx) + ADMIN_AUDIENCE, "client_id": app.client_id,
            "scope": "admin", "jti": uuid.uuid4().hex, "iat": now, "exp": now + ttl}
    return {"token_type": "Bearer", "access_token": ctx.jwt.sign_jwt(body, algorithm=ALGORITHM, typ=TOKEN_TYPE),
            "expires_in": ttl, "scope": "admin"}


def admin_app_of(ctx: AppContext, access_token: str) -> AppRecord | None:
    """The app a client-credentials token for the admin API names, read now (removed: None); None also
    for any other token. Never a person's session token, which carries a `sid`."""
    try:
        claims = ctx.jwt.decode(access_token, now=ctx.now(), issuer=issuer(ctx), verify_audience=False)
    except TokenError:
        return None
    if claims.get("aud") != issuer(ctx) + ADMIN_AUDIENCE or "sid" in claims or claims.get("scope") != "admin":
        return None
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or claims.get("sub") != client_id:
        return None
    return apps.app_store(ctx).get(client_id)


class _Hooks:
    """What Authlib's server asks of citylogin."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def client(self, client_id: Any) -> Client | None:
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 64:
            return None
        app = current_app(self.ctx, client_id=client_id)
        if app is None:
            return None
        if not (app.oidc().redirect_uris or app.admin_role):
            return None  # an app registered for introspection and events only signs nobody in
        return Client(app=app, secret_ok=lambda secret: _secret_ok(app, secret))

    def tokens(self, *, grant_type: str, client: Client, user: SignedIn | None, scope: str,
               expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        """The tokens of a grant (signed_tokens); the client-credentials grant's token of the app itself. A
        code's are signed on the background pool while its redemption's transaction travels (save_token
        adds them once it committed)."""
        if user is None:
            return admin_access_token(self.ctx, client.app, now=_epoch(self.ctx))
        if grant_type == "authorization_code":
            return {"scope": scope}
        return self.signed_tokens(client=client, user=user, scope=scope)

    def signed_tokens(self, *, client: Client, user: SignedIn, scope: str) -> dict[str, Any]:
        """An RFC 9068 access token of the person's session for this app (SPEC §14), and the grant's
        next refresh token when it has them."""
        ttl, now = self.ctx.settings.access_token_ttl, _epoch(self.ctx)
        # A refresh's pair is formed from its rotation (the same again within the reuse grace): its
        # moment and a jti of the grant's generation; EdDSA signs the same claims the same way. Every
        # jti names its grant, so a revoked grant's tokens stay refused once a new grant replaces it.
        issued = user.issued_epoch or now
        jti = grants.access_token_id(grant_id=user.grant_id, generation=user.refresh_generation) \
            if user.grant_id else uuid.uuid4().hex
        body = {"iss": issuer(self.ctx), "sub": user.user_uuid, "aud": client.client_id,
                "client_id": client.client_id, "scope": scope, "sid": user.session_id, "did": user.device_id,
                "jti": jti, "iat": issued, "exp": issued + ttl, "auth_time": user.auth_time}
        if user.jkt:  # DPoP-bound (RFC 9449 §6): usable only with a proof by that key
            body["cnf"] = {"jkt": user.jkt}
        access_token = self.ctx.jwt.sign_jwt(body, algorithm=ALGORITHM, typ=TOKEN_TYPE)
        token = {"token_type": "DPoP" if user.jkt else "Bearer", "access_token": access_token,
                 "expires_in": max(1, issued + ttl - now), "scope": scope}
        if user.refresh_generation:
            token["refresh_token"] = refresh.token_text(self.ctx, user, client_id=client.client_id, scope=scope)
        return token

    def code_tokens(self, request: OAuth2Request, *, scope: str) -> tuple[dict[str, Any], str | None]:
        """A redeemed code's tokens, and its ID token for scope openid (after the access token, whose
        hash it carries)."""
        tokens = self.signed_tokens(client=request.client, user=request.user, scope=scope)
        id_token = provider(self.ctx).id_token.signed(tokens, request) if "openid" in scope.split() else None
        return tokens, id_token

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        """A code that passed every check: record the app's grant on the session and the request's
        redemption mark, which uses the code up, in one transaction with the session's liveness (a session
        that ended meanwhile gives the app nothing: invalid_grant). A second redemption of a code of its
        request, on this session or another (a second browser finished the same request), is a replay, which
        the mark refuses and which revokes what the first gave (RFC 6749 §4.1.2). The tokens are signed on
        the background pool while the transaction travels, and given only once it committed. A refresh
        wrote its rotation already."""
        if request.payload.grant_type != "authorization_code":
            return
        user: SignedIn = request.user
        code: Code = request.authorization_code
        scope = token.get("scope", "")
        grant = user.grant(client_id=request.client.client_id, scope=scope)
        signing = background(self.ctx).submit(self.code_tokens, request, scope=scope)
        now = _epoch(self.ctx)
        recorded = grant_store(self.ctx).redeem_item(grant, request_digest=code.request_digest, now=now,
                                                     expires_epoch=code.session_expires_epoch)
        # Every code of the request ends by now + its request's life + a code's: the mark outlives them all.
        marked = RequestStore(_tokens(self.ctx)).redeem_item(digest=code.request_digest, session_id=code.session_id,
                                                             user_uuid=code.user_uuid,
                                                             keep_until=now + REQUEST_TTL + codes.CODE_TTL)
        try:
            refresh.write_while_live(self.ctx, [
                sessions.live_check_of(self.ctx, session_id=code.session_id, user_uuid=code.user_uuid,
                                       device_id=code.device_id),
                GuardedWrite(item=recorded, refusal=CodeNotSpent), GuardedWrite(item=marked, refusal=CodeNotSpent)])
        except CodeNotSpent:
            self.code_replayed(code)
            raise InvalidGrantError("This code was used before: what it gave is revoked.") from None
        issued, request.signed_id_token = signing.result()
        token.update(issued)

    def sealed_code(self, request: OAuth2Request) -> str:
        """The code complete() gives (nothing is written: the code is its own record, oidc.codes): bound as
        SPEC §14 says, with the person's ID-token claims as read with the session."""
        pending: _StoredRequest = request
        user: SignedIn = request.user
        data, scope = request.payload.data, request.scope or ""
        code = Code(client_id=request.client.client_id, redirect_uri=data["redirect_uri"], scope=scope,
                    code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
                    user_uuid=user.user_uuid, session_id=user.session_id, device_id=user.device_id,
                    auth_time=user.auth_time, amr=list(user.amr), nonce=data.get("nonce") or None,
                    jkt=data.get("dpop_jkt") or None, person=_claims_of(pending, scope=scope),
                    session_expires_epoch=pending.session_expires_epoch, request_digest=pending.digest)
        return codes.seal(self.ctx, code, now=_epoch(self.ctx))

    def code_replayed(self, code: Code) -> None:
        """RFC 6749 §4.1.2: a code used twice revokes what it gave (its refresh tokens die with the grant,
        its access tokens are refused at once), and the app, which holds an ID token of the session, is
        told by Back-Channel Logout in the revocation's own transaction (oidc.grants). Only while the
        app's grant on the session is still the one a code of this request gave (a later sign-in replaced
        it and its tokens already); the session and other apps' grants go on. The first redemption may
        have been on another session: the request's mark names it."""
        session_id = RequestStore(_tokens(self.ctx)).redeemed_session(digest=code.request_digest) or code.session_id
        given, request_digest = grant_store(self.ctx).given_by(session_id=session_id, client_id=code.client_id)
        if given is not None and request_digest == code.request_digest:
            grants.end_grant(self.ctx, session_id=session_id, client_id=code.client_id,
                             reason=grants.CODE_REPLAY, grant_id=given.grant_id)

    def live_signed_in(self, code: Code, client: Client) -> SignedIn | None:
        """The person of a code being redeemed, once the request's DPoP key is the code's (RFC 9449 §10)
        and while the session lives; a refresh token comes with offline_access, and always for a public
        client (it has no other way to stay signed in)."""
        key = token_binding.request_key(bound_to=code.jkt, required=client.app.oidc().require_dpop)
        # The session's liveness is checked by the write that spends the code (save_token), not read here.
        wants_refresh = "offline_access" in code.scope.split() or client.app.oidc().public
        signed_in = code.signed_in(refresh_generation=1 if wants_refresh else 0, grant_id=refresh.new_grant_id())
        return replace(signed_in, jkt=key, refresh_jkt=key)  # the grant, and so its refresh tokens, bound to it

    def grant_of_token(self, token: Any) -> HeldGrant | None:
        """The grant behind one of our refresh tokens, or behind an app's access token; None for
        anything else."""
        presented = refresh.presented(self.ctx, token)
        if presented is not None:
            return HeldGrant(session_id=presented.grant.session_id, client_id=presented.grant.client_id,
                             grant_id=presented.grant.grant_id)
        if not isinstance(token, str) or len(token) > 8192:
            return None
        try:
            claims = self.ctx.jwt.decode(token, now=self.ctx.now(), issuer=issuer(self.ctx), verify_audience=False)
        except TokenError:
            return None
        session_id, client_id = claims.get("sid"), claims.get("client_id")
        if not (isinstance(session_id, str) and isinstance(client_id, str)):
            return None
        return HeldGrant(session_id=session_id, client_id=client_id, grant_id=grants.named_grant(claims))

    def revoke_grant(self, held: HeldGrant) -> None:
        """RFC 7009: the app gives its grant back. Its tokens die at once; it asked, so it is not told
        by back channel now, but still is when the session ends (it may hold an ID token of it)."""
        grants.end_grant(self.ctx, session_id=held.session_id, client_id=held.client_id,
                         reason=grants.REVOKED_BY_APP, grant_id=held.grant_id)

    def presented_refresh(self, token: str) -> AppRefresh | None:
        return refresh.presented_for_rotation(self.ctx, token)

    def rotate_refresh(self, presented: AppRefresh, client: Client) -> SignedIn:
        return refresh.rotate(self.ctx, presented, dpop_required=client.app.oidc().require_dpop)


def _claims_of(pending: "_StoredRequest", *, scope: str) -> dict[str, Any]:
    assert pending.person is not None, "complete() reads the person with the session"
    return user_claims.of_account(pending.person, scope=scope)


def _secret_ok(app: AppRecord, secret: Any) -> bool:
    return isinstance(secret, str) and 0 < len(secret) <= 256 and digests_equal(
        token_digest(secret, purpose=apps.SECRET_PURPOSE), app.secret_digest)


# --- authorize: the app's request waits for the person ------------------------------------------

class _Pending:
    """Stands in for the person while the request is checked: who it is is known only once the
    browser signs in (prompt=none is answered then, without a page)."""

    def get_user_id(self) -> None:
        return None


class _StoredRequest(OAuth2Request):
    """An authorization request made again from the parameters kept while the person signed in."""

    def __init__(self, uri: str, params: dict[str, str]) -> None:
        super().__init__("GET", uri)
        self.payload = BasicOAuth2Payload(params)
        self._params = params
        # Set by complete() for the code (sealed_code): the person as read with the session, the session's
        # latest end, and the request's own item (the code's redemption marks it).
        self.person: AccountRecord | None = None
        self.session_expires_epoch = 0
        self.digest = ""

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return {}


def begin(ctx: AppContext, sent: request_checks.Params) -> Response:
    """GET|POST /oidc/authorize with every value of every parameter (`sent`): check the request (a
    pushed one's parameters, for a `request_uri`) by the standard's refusals and as Authlib does, keep
    it, and send the browser to the sign-in page. An unknown client or redirect URI, a request_uri that
    is not good, or a client_id, redirect_uri or request_uri sent twice or malformed gets an error page,
    never a redirect; any other refusal goes to the trusted redirect URI."""
    server = provider(ctx)
    try:
        request_checks.check_target(sent)
        pushed = par.presented_request(_tokens(ctx), request_uri=sent["request_uri"], client_id=sent.get("client_id"),
                                       now=_epoch(ctx)) if "request_uri" in sent else None
    except OAuth2Error as error:
        raise AuthorizationRefused(error.description or error.error, error=error.error) from None
    params = MultiDict(pushed.params) if pushed else sent
    try:
        _check_authorization_request(server, params)
        grant = server.get_consent_grant(request=_authorization_request(ctx, params.to_dict()), end_user=_Pending())
        if grant.client.app.oidc().require_par and not pushed:
            raise InvalidRequestError("This app signs in with pushed authorization requests (PAR) only.",
                                      redirect_uri=grant.redirect_uri)
        if "dpop_jkt" in params and not token_binding.JKT.match(params["dpop_jkt"]):
            raise InvalidRequestError("dpop_jkt must be a key's RFC 7638 thumbprint.", redirect_uri=grant.redirect_uri)
    except OAuth2Error as error:
        return _refusal(ctx, error, state=request_checks.echoable_state(params))
    request_id = secrets.token_urlsafe(24)
    _keep(ctx, digest=token_digest(request_id, purpose=REQUEST_PURPOSE), params=params.to_dict(), pushed=pushed)
    return redirect(f"{issuer(ctx)}/#oidc={request_id}", code=303)


def _keep(ctx: AppContext, *, digest: str, params: dict[str, str], pushed: par.PushedRequest | None) -> None:
    """Keep the request for the sign-in page: one put, or, for a pushed request, in the same transaction
    that spends its request_uri (a refusal of either leaves the request_uri to its client)."""
    requests = RequestStore(_tokens(ctx))
    if pushed is None:
        requests.create(digest=digest, params=params, client_id=params["client_id"], now=_epoch(ctx), ttl=REQUEST_TTL)
        return
    kept = requests.create_item(digest=digest, params=params, client_id=params["client_id"], now=_epoch(ctx),
                                ttl=REQUEST_TTL)
    try:
        write_all(ctx.dynamodb, [pushed.spending, GuardedWrite(item=kept, refusal=lambda: RuntimeError("a new id"))])
    except OAuth2Error as error:
        raise AuthorizationRefused(error.description or error.error, error=error.error) from None


def _check_authorization_request(server: Provider, params: request_checks.Params) -> None:
    """The standard's refusals of an authorization request whose client_id and redirect_uri were
    checked (request_checks.check_target); each goes to the redirect URI once that is trusted: the
    client is known and registered it (RFC 6749 §4.1.2.1), else to an error page."""
    try:
        request_checks.check_authorization_request(params)
    except OAuth2Error as error:
        error.redirect_uri = _trusted_redirect_uri(server, params)
        raise


def _trusted_redirect_uri(server: Provider, params: request_checks.Params) -> str | None:
    client = server.query_client(params.get("client_id"))
    redirect_uri = params.get("redirect_uri")
    if client is None or redirect_uri is None or not client.check_redirect_uri(redirect_uri):
        return None
    return redirect_uri


def _authorization_request(ctx: AppContext, params: dict[str, str]) -> _StoredRequest:
    return _StoredRequest(f"{issuer(ctx)}/oidc/authorize?{urlencode(params)}", params)


def push_request(offer: ProofOffer | None) -> Response:
    """POST /oidc/par (RFC 9126): the authenticated app's authorization request, checked as
    /oidc/authorize checks it and kept 60 s behind a one-time request_uri; errors are JSON. A DPoP
    proof binds the code to its key (RFC 9449 §10.1)."""
    from common.context import ctx as current
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)
    try:
        _check_backchannel_request(request)
        client = server.authenticate_client(request, list(CodeGrant.TOKEN_ENDPOINT_AUTH_METHODS),
                                            "pushed_authorization_request")
        request_checks.check_target(request.form)
        request_checks.check_authorization_request(request.form)
        form = par.checked_form(request.form.to_dict(), client.client_id)
        key = token_binding.proven_key(ctx, offer)
        if key is not None:
            if form.get("dpop_jkt", key) != key:
                raise token_binding.InvalidDpopProofError("dpop_jkt differs from the proof's key.")
            form["dpop_jkt"] = key
        server.get_consent_grant(request=_authorization_request(ctx, form), end_user=_Pending())
    except OAuth2Error as error:
        return _json_error(error)
    answer = par.stored_params(_tokens(ctx), form=form, client_id=client.client_id, now=_epoch(ctx))
    return Response(json.dumps(answer), status=201, mimetype="application/json", headers={"Cache-Control": "no-store"})


def _check_backchannel_request(request: OAuth2Request) -> None:
    """The standard's refusals at the token, PAR and revocation endpoints, before Authlib reads the
    request: its parameters (query and body, as Authlib reads them) and its client authentication."""
    request_checks.check_backchannel_request(request.payload.data, authorization=request.headers.get("Authorization"))


def _json_error(error: OAuth2Error) -> Response:
    """An RFC 6749 §5.2 error as JSON, never a redirect (the back-channel endpoints)."""
    status = error.status_code if error.status_code and error.status_code != 302 else 400
    body = {"error": error.error, **({"error_description": error.description} if error.description else {})}
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="citylogin"'
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def _refusal(ctx: AppContext, error: OAuth2Error, *, state: str | None) -> Response:
    if error.redirect_uri:
        query = [("error", error.error), ("error_description", error.description or error.error),
                 *([("state", state)] if state else []), ("iss", issuer(ctx))]
        return redirect(add_params_to_uri(error.redirect_uri, query), code=303)
    raise AuthorizationRefused(error.description or error.error, error=error.error)


def _pending(ctx: AppContext, request_id: str) -> tuple[dict[str, str], int]:
    found = RequestStore(_tokens(ctx)).get(digest=token_digest(request_id, purpose=REQUEST_PURPOSE), now=_epoch(ctx))
    if found is None:
        raise AuthorizationRequestUnknown()
    return found


def _app(ctx: AppContext, client_id: str) -> AppRecord:
    """The app of a waiting request, as every host sees it within a second of a change (apps.registry)."""
    app = current_app(ctx, client_id=client_id)
    if app is None:
        raise apps.AppNotFound()
    return app


def interaction(ctx: AppContext, *, request_id: str) -> Interaction:
    """What the sign-in page shows: which app asks, for what, and how (prompt, max_age)."""
    params, _ = _pending(ctx, request_id)
    app = _app(ctx, params["client_id"])
    return Interaction(client_id=app.client_id, client_name=app.name,
                       scopes=[s for s in params.get("scope", "").split() if s in SCOPES],
                       prompt=params.get("prompt", "").split(), max_age=_max_age(params),
                       login_hint=params.get("login_hint"), consent=app.oidc().consent)


def _max_age(params: dict[str, str]) -> int | None:
    value = params.get("max_age", "")
    return int(value) if value.isdigit() and len(value) < 10 else None


WAITING, PERSON = "oidc.waiting", "oidc.person"  # complete()'s reads beside the session


def complete_reads(ctx: AppContext, *, request_id: str) -> sessions.Along:
    """What finishing a request reads in the device's session's own batch read (the guard's `along`):
    the waiting request and the person (the ID token's claims are taken now, with the code)."""
    def reads(claims: dict[str, Any]) -> dict[str, KeyRead]:
        return _complete_reads(ctx, request_id=request_id, user_uuid=str(claims.get("sub")))
    return reads


def _complete_reads(ctx: AppContext, *, request_id: str, user_uuid: str) -> dict[str, KeyRead]:
    return {WAITING: RequestStore(_tokens(ctx)).read(digest=token_digest(request_id, purpose=REQUEST_PURPOSE),
                                                     now=_epoch(ctx)),
            PERSON: accounts.account_read(ctx, user_uuid=user_uuid)}


def complete(ctx: AppContext, *, principal: Principal, request_id: str, consent: bool) -> Redirect:
    """The signed-in browser finishes the request: a code for its session, or the app's error. An app
    added with --consent asks the person (403 consent_required, or that error at the app for
    prompt=none) unless they allowed it these scopes before; prompt=consent asks every time. Nothing is
    written: the code is sealed (oidc.codes), and every code of one request counts as one at the token
    endpoint (a second redemption is a replay)."""
    found = principal.along if WAITING in principal.along else read_together(
        ctx.dynamodb, _complete_reads(ctx, request_id=request_id, user_uuid=principal.user_uuid))
    if found[WAITING] is None:
        raise AuthorizationRequestUnknown()
    if found[PERSON] is None:
        raise sessions.AccountDeleted()
    (params, asked_at), session = found[WAITING], principal.session
    prompts, max_age, now = params.get("prompt", "").split(), _max_age(params), _epoch(ctx)
    if ("login" in prompts and session.login_epoch < asked_at) or \
            (max_age is not None and now - session.login_epoch > max_age):
        raise LoginRequired()
    app = _app(ctx, params["client_id"])
    if app.oidc().consent:
        scopes = frozenset(s for s in params.get("scope", "").split() if s in SCOPES)
        if not consent and ("consent" in prompts or consents.needs_asking(
                ctx, user_uuid=principal.user_uuid, client_id=app.client_id, scopes=scopes)):
            if "none" in prompts:
                return cancel(ctx, request_id=request_id, error="consent_required")
            raise ConsentRequired()
        if consent:
            consents.remember(ctx, user_uuid=principal.user_uuid, client_id=app.client_id, scopes=scopes)
    user = SignedIn(user_uuid=principal.user_uuid, session_id=principal.session_id, device_id=principal.device_id,
                    auth_time=session.login_epoch, amr=tuple(session.amr or sessions.PASSWORD_AMR))
    server = provider(ctx)
    stored = _authorization_request(ctx, params)
    stored.person, stored.session_expires_epoch = found[PERSON], session.expires_epoch
    stored.digest = token_digest(request_id, purpose=REQUEST_PURPOSE)
    response = server.create_authorization_response(request=stored, grant_user=user,
                                                    grant=server.get_authorization_grant(stored))
    location = response.headers.get("Location")
    if response.status_code != 302 or not location:
        raise AuthorizationRefused()
    return Redirect(redirect_to=location)  # nothing written: the code is sealed, its redemption marks the request


def cancel(ctx: AppContext, *, request_id: str, error: str) -> Redirect:
    """The person declined, or prompt=none found nobody signed in: the app hears `error`."""
    params, _ = _pending(ctx, request_id)
    RequestStore(_tokens(ctx)).finish(digest=token_digest(request_id, purpose=REQUEST_PURPOSE), now=_epoch(ctx))
    query = [("error", error), *([("state", params["state"])] if params.get("state") else []), ("iss", issuer(ctx))]
    return Redirect(redirect_to=add_params_to_uri(params["redirect_uri"], query))


# --- token and userinfo --------------------------------------------------------------------------

def token_response(offer: ProofOffer | None) -> Response:
    """POST /oidc/token: Authlib's token endpoint (RFC 6749 §5 errors as JSON), the tokens bound to the
    key of the request's DPoP proof if it has one."""
    from common.context import ctx as current
    ctx = current()
    server = provider(ctx)
    request = server.create_oauth2_request(None)  # parsed once, for the checks and for Authlib
    try:
        _check_backchannel_request(request)
        key = token_binding.proven_key(ctx, offer)
    except OAuth2Error as error:
        return _json_error(error)
    with token_binding.proving(key):
        return server.create_token_response(request)


def userinfo(ctx: AppContext, *, access_token: str, scheme: str, offer: ProofOffer | None) -> dict[str, Any]:
    """The person behind an app's access token (a DPoP-bound one with its proof), by its scope; 401 once
    its session has ended or the app gave its grant back (/oidc/revoke)."""
    principal = sessions.authenticate(ctx, access_token=access_token, scheme=scheme, offer=offer,
                                      issued_by=sessions.PROVIDER_TOKENS,
                                      along=lambda claims: _userinfo_reads(ctx, claims))
    scope = str(principal.claims.get("scope", ""))
    if "openid" not in scope.split():
        raise sessions.InvalidToken("This access token was not issued for OpenID Connect (scope openid).")
    if not grants.issued_from(principal.along[GRANT], principal.claims):
        raise sessions.InvalidToken("This access token was revoked.")
    if principal.along[PERSON] is None:
        raise sessions.AccountDeleted()
    return {"sub": principal.user_uuid, **user_claims.of_account(principal.along[PERSON], scope=scope)}


GRANT = "oidc.grant"


def _userinfo_reads(ctx: AppContext, claims: dict[str, Any]) -> dict[str, KeyRead]:
    """What userinfo reads in the session's own batch read: the app's grant the token came from (revoked:
    none) and the person."""
    return {GRANT: grant_store(ctx).read(session_id=str(claims.get("sid")), client_id=str(claims.get("client_id"))),
            PERSON: accounts.account_read(ctx, user_uuid=str(claims.get("sub")))}


def still_granted(ctx: AppContext, claims: dict[str, Any]) -> bool:
    """Whether the app still holds the grant an OpenID Provider access token came from (a revocation,
    a code used twice or a refresh token reused after the grace revokes it: oidc.grants); citylogin's
    own tokens have none to lose."""
    client_id, session_id = claims.get("client_id"), claims.get("sid")
    if client_id is None:
        return True
    return isinstance(client_id, str) and isinstance(session_id, str) and \
        grants.issued_from(grant_store(ctx).get(session_id=session_id, client_id=client_id), claims)


def end_session_response(ctx: AppContext) -> Response:
    """GET|POST /oidc/logout (RP-Initiated Logout 1.0): a request that checks out is kept behind a
    one-time handle and the browser goes to the web UI (`/#oidc-logout=<handle>`), where this browser's
    device proves with its key which session it holds (flows.app_sign_out); nothing ends here, so a
    request that no browser follows ends nothing. One that does not check out is an error page."""
    try:
        validated = provider(ctx).validate_endpoint_request("end_session")
    except OAuth2Error as error:
        raise AuthorizationRefused(error.description or error.error, error=error.error) from None
    return redirect(f"{issuer(ctx)}/#oidc-logout={rp_logout.keep(ctx, validated)}", code=303)


def revocation_response() -> Response:
    """POST /oidc/revoke: Authlib's RFC 7009 endpoint, after the standard's refusals (JSON errors)."""
    from common.context import ctx as current
    server = provider(current())
    try:
        _check_backchannel_request(server.create_oauth2_request(None))
    except OAuth2Error as error:
        return _json_error(error)
    return server.create_endpoint_response("revocation")

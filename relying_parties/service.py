"""The app registry (SPEC §11 "Apps"): add, list, show, rotate a secret, remove; and the HTTP Basic
check every app-facing route makes. A secret is handed out once and kept only as its digest."""
from __future__ import annotations

import base64
import binascii
import secrets
import threading
import time
from typing import Any, Callable
from urllib.parse import unquote

from relying_parties.models import (BACKCHANNEL_STREAM_SUFFIX, DEFAULT_SCREEN_CLASS, OPERATOR_FIELDS, UNSIGNED_ALG,
                                    AppRecord, NewCredentials, OidcClient, SelfRegistration)
from relying_parties.profiles import profile_problem
from relying_parties.store import AppChanged, AppExists, AppMissing, AppStore
from relying_parties.stream_store import StreamStore
from common import brand
from common.errors import ApiError, Conflict, ErrorCode, FieldKind, InvalidField, NotFound, Unauthorized
from common.lookalikes import same_to_a_reader
from common.timefmt import iso
from common.crypto.tokens import digests_equal, token_digest
from common.database.guarded_write import GuardedWrite
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext
from sessions import service as sessions
from sessions.models import RevokeReason
from common.web.cors import origin_problem, web_origin

SECRET_PURPOSE = "app_secret"
CLIENT_ID_PREFIX = "app_"
# An app's record is read again after this many seconds: a removed app or a rotated secret stops
# working on every host within it, and a busy app costs no DynamoDB read per request.
CACHE_SECONDS = 2.0


class InvalidClient(Unauthorized):
    """RFC 7662 §2.1 / RFC 6749 §5.2: the app's credentials are missing or wrong."""

    code, detail = ErrorCode.INVALID_CLIENT, "The app's client credentials are missing or wrong."
    headers = {"WWW-Authenticate": 'Basic realm="citylogin"'}

    def __init__(self) -> None:
        super().__init__(error="invalid_client")


class PublicClient(ApiError):
    code, detail = ErrorCode.INVALID_FIELD, "A public client has no secret to rotate."


class PublicnessFixed(ApiError):
    code, detail = ErrorCode.INVALID_FIELD, "Whether a client is public can not change: add a new app."


class AppNotFound(NotFound):
    code, detail = ErrorCode.APP_NOT_FOUND, "No app has this client_id."


class AppChangedMeanwhile(Conflict):
    code, detail = ErrorCode.APP_CHANGED, "The app was changed meanwhile: send the change again."


def app_store(ctx: AppContext) -> AppStore:
    return AppStore(ctx.dynamodb, ctx.tables.apps)


def _digest(secret: str) -> str:
    return token_digest(secret, purpose=SECRET_PURPOSE)


def add_app(ctx: AppContext, *, name: str, push_url: str | None, oidc: OidcClient | None = None,
            admin_role: str | None = None, registration: SelfRegistration | None = None) -> NewCredentials:
    """A new app; with `oidc` also an OpenID Connect client (SPEC §14); with `admin_role` it gets admin
    API tokens of that role by the client-credentials grant (SPEC §15). A public client gets no
    secret (client_secret is ""): nothing it sends can authenticate it but PKCE. An app that registers
    itself (RFC 7591) is written in one transaction with the entries its `registration` brings along."""
    now, oidc = ctx.now(), oidc or OidcClient()
    _check_profile(oidc, admin_role=admin_role)
    fields = _oidc_fields(oidc)
    if registration is not None:
        _check_own_name(ctx, name=name, client_id=None)
        fields.update(registration_token_digest=registration.token_digest,
                      registered_with=registration.registered_with)
    while True:
        secret = "" if oidc.public else secrets.token_urlsafe(32)
        app = AppRecord(client_id=CLIENT_ID_PREFIX + secrets.token_hex(10), name=name,
                        secret_digest=_digest(secrets.token_urlsafe(32)) if oidc.public else _digest(secret),
                        created_at=iso(now), created_epoch=int(now.timestamp()), push_url=push_url,
                        created_ms=int(now.timestamp() * 1000), admin_role=admin_role, **fields)
        try:
            app_store(ctx).create(app, along=registration.along if registration else ())
            break
        except AppExists:
            continue  # 80 random bits collided: draw again
    audit(AuditEvent.APP_ADDED, client_id=app.client_id, app_name=name, push_url=push_url, admin_role=admin_role,
          registered_with=app.registered_with)
    return NewCredentials(app=app, client_secret=secret)


def _check_profile(oidc: OidcClient, *, admin_role: str | None) -> None:
    """InvalidField naming the member that keeps the app from its profile (relying_parties.profiles), if one does."""
    problem = profile_problem(oidc, admin_role=admin_role)
    if problem is not None:
        raise InvalidField(problem.field, problem.detail)


def _web_origins(oidc: OidcClient) -> list[str] | None:
    """The client's web origins, serialized (common.web.cors); only a public client has any: a confidential
    client's secret is never in a page, so its pages never call the token endpoint themselves."""
    if not oidc.web_origins:
        return None
    if not oidc.public:
        raise InvalidField("web_origins", "web_origins: only a public client (a SPA) has web origins.")
    problems = [problem for origin in oidc.web_origins if (problem := origin_problem(origin))]
    if problems:
        raise InvalidField("web_origins", f"web_origins: {problems[0]}.", kind=FieldKind.INVALID_FORMAT)
    return sorted({origin for value in oidc.web_origins if (origin := web_origin(value))})


def _consistent(oidc: OidcClient) -> None:
    """The rules an app's OpenID Connect fields hold together, however it is added or changed (`apps add`, the
    admin API, an app registering itself: RFC 7591 §2); InvalidField naming the field otherwise."""
    method = oidc.registered_auth_method
    if oidc.jwks and oidc.jwks_uri:
        raise InvalidField("jwks_uri", "jwks_uri: give jwks or jwks_uri, not both.")
    if method == "private_key_jwt" and not (oidc.jwks or oidc.jwks_uri):
        raise InvalidField("token_endpoint_auth_method",
                           "token_endpoint_auth_method: private_key_jwt needs jwks or jwks_uri.")
    if method is not None and (method == "none") != oidc.public:
        raise InvalidField("token_endpoint_auth_method",
                           "token_endpoint_auth_method: none is a public client's, and a public client's alone.")


def _oidc_fields(oidc: OidcClient) -> dict[str, Any]:
    """The record's OIDC attributes, left out where they hold the default (an app as before)."""
    _consistent(oidc)
    fields = {"redirect_uris": list(oidc.redirect_uris) or None, "public_client": oidc.public or None,
              "post_logout_redirect_uris": list(oidc.post_logout_redirect_uris) or None,
              "backchannel_logout_uri": oidc.backchannel_logout_uri, "consent": oidc.consent or None,
              "id_token_alg": oidc.id_token_alg if oidc.redirect_uris or oidc.device_flow else None,
              "require_par": oidc.require_par or None, "require_dpop": oidc.require_dpop or None,
              "require_pkce": oidc.require_pkce or None,
              "jwks": oidc.jwks, "web_origins": _web_origins(oidc), "device_flow": oidc.device_flow or None,
              "device_class": None if oidc.device_class == DEFAULT_SCREEN_CLASS else oidc.device_class,
              **_registration_fields(oidc)}
    _check_request_object_rules(oidc)
    return fields


def _check_request_object_rules(oidc: OidcClient) -> None:
    """The request-object fields (RFC 9101, OIDC Dynamic Registration §2) agree: an app that requires
    signed objects, or names a signing algorithm, has keys to check them with; unsigned objects are
    allowed only where no signed algorithm is named and signed objects are not required."""
    alg, unsigned = oidc.request_object_signing_alg, oidc.allow_unsigned_request_objects or \
        oidc.request_object_signing_alg == UNSIGNED_ALG
    if oidc.require_signed_request_object and unsigned:
        raise InvalidField("require_signed_request_object", "require_signed_request_object: an app that requires "
                           "signed request objects can not allow unsigned ones (alg none).")
    if oidc.allow_unsigned_request_objects and alg not in (None, UNSIGNED_ALG):
        raise InvalidField("allow_unsigned_request_objects", "allow_unsigned_request_objects: the app's request "
                           "objects are signed with its request_object_signing_alg alone.")
    if (oidc.require_signed_request_object or alg not in (None, UNSIGNED_ALG)) and not (oidc.jwks or oidc.jwks_uri):
        raise InvalidField("request_object_signing_alg", "request_object_signing_alg, require_signed_request_object: "
                           "signed request objects are checked with the app's keys: register jwks or jwks_uri.")


def _registration_fields(oidc: OidcClient) -> dict[str, Any]:
    """The record's RFC 7591 / RFC 9101 / FAPI 2.0 attributes, left out where they hold the default."""
    return {"jwks_uri": oidc.jwks_uri, "logo_uri": oidc.logo_uri, "client_uri": oidc.client_uri,
            "policy_uri": oidc.policy_uri, "tos_uri": oidc.tos_uri, "contacts": list(oidc.contacts) or None,
            "userinfo_signed_response_alg": oidc.userinfo_signed_response_alg,
            "token_endpoint_auth_method": oidc.registered_auth_method,
            "grant_types": list(oidc.grant_types) or None, "request_uris": list(oidc.request_uris) or None,
            "request_object_signing_alg": oidc.request_object_signing_alg,
            "allow_unsigned_request_objects": oidc.allow_unsigned_request_objects or None,
            "require_signed_request_object": oidc.require_signed_request_object or None,
            "profile": oidc.profile}


def list_apps(ctx: AppContext) -> list[AppRecord]:
    """Every app, oldest first; one whose stored record cannot be read is left out (relying_parties.store logs it)."""
    return sorted(app_store(ctx).list(), key=lambda app: (app.created_at, app.client_id))


def show_app(ctx: AppContext, *, client_id: str) -> AppRecord:
    app = find_app(ctx, client_id=client_id)
    if app is None:
        raise AppNotFound()
    return app


def find_app(ctx: AppContext, *, client_id: str) -> AppRecord | None:
    """The app as its record stands now (read strongly consistent), or None."""
    return app_store(ctx).get(client_id)


def update_app(ctx: AppContext, *, client_id: str, name: str | None = None, push_url: str | None = None,
               oidc: OidcClient | None = None, admin_role: str | None = None,
               verified: bool = False, changed: frozenset[str] = frozenset(),
               set_by_operator: frozenset[str] = frozenset(), revision: int | None = None) -> AppRecord:
    """Change what `changed` names of an app (name, verified, push_url, admin_role, oidc: every OpenID Connect
    field at once); the others stay. Every host authenticates by the change within CACHE_SECONDS, and pushes
    and answers CORS by it within a second (relying_parties.registry). `set_by_operator`: the fields of
    OPERATOR_FIELDS an operator sets by this change, kept as the operator's on an app that registered itself;
    `revision`: the app's revision the change was computed from (AppChangedMeanwhile if it moved since)."""
    fields: dict[str, Any] = {}
    if "name" in changed:
        fields["name"] = name
    if "verified" in changed:
        fields["verified"] = verified or None
    if "push_url" in changed:
        fields["push_url"] = push_url
    if "admin_role" in changed:
        fields["admin_role"] = admin_role
    if oidc is not None or "admin_role" in changed:
        current = show_app(ctx, client_id=client_id)
        if oidc is not None and oidc.public != bool(current.public_client):
            raise PublicnessFixed()
        _check_profile(oidc or current.oidc(), admin_role=admin_role if "admin_role" in changed else current.admin_role)
        fields.update(_operator_fields(current, set_by_operator))
        if "name" in changed and current.registration_token_digest and name != current.name:
            _check_own_name(ctx, name=name or "", client_id=client_id)
    if oidc is not None:
        fields.update(_oidc_fields(oidc))
    try:
        app = app_store(ctx).update(client_id, changes=fields, revision=revision) if fields \
            else show_app(ctx, client_id=client_id)
    except AppMissing:
        raise AppNotFound() from None
    except AppChanged:
        raise AppChangedMeanwhile() from None
    _cache.forget(ctx.tables.apps, client_id)
    audit(AuditEvent.APP_UPDATED, client_id=client_id, changed=sorted(fields))
    return app


def _check_own_name(ctx: AppContext, *, name: str, client_id: str | None) -> None:
    """An app that registers itself may not take the service's name or an operator app's, nor one a person
    would read as either (common.lookalikes: case, width, marks, look-alikes of other scripts): its name is
    what the approval and consent pages show (SPEC §14)."""
    taken = [brand.current().name, brand.DEFAULT_NAME,
             *(app.name for app in list_apps(ctx) if not app.registration_token_digest and app.client_id != client_id)]
    if any(same_to_a_reader(name, other) for other in taken):
        raise InvalidField("client_name", "client_name: reads as the name of this service or of one of its "
                                          "operator's apps; choose another")


def _operator_fields(current: AppRecord, set_by_operator: frozenset[str]) -> dict[str, Any]:
    """The record's operator_fields with those an operator sets now, on an app that registered itself (an app an
    operator added is the operator's whole)."""
    newly = set_by_operator & set(OPERATOR_FIELDS)
    if not current.registration_token_digest or not newly:
        return {}
    return {"operator_fields": sorted(set(current.operator_fields or ()) | newly)}


def rotate_secret(ctx: AppContext, *, client_id: str) -> NewCredentials:
    if show_app(ctx, client_id=client_id).public_client:
        raise PublicClient()
    secret = secrets.token_urlsafe(32)
    try:
        app = app_store(ctx).replace_secret(client_id, secret_digest=_digest(secret), at=iso(ctx.now()))
    except AppMissing:
        raise AppNotFound() from None
    _cache.forget(ctx.tables.apps, client_id)
    audit(AuditEvent.APP_SECRET_ROTATED, client_id=client_id)
    return NewCredentials(app=app, client_secret=secret)


def still_registered(ctx: AppContext, *, client_id: str, refusal: Callable[[], Exception]) -> GuardedWrite:
    """A check, for another domain's transaction, that the app is still registered when it commits: what
    an operator removed gives nothing more (SPEC §14)."""
    return GuardedWrite(item=app_store(ctx).registered_item(client_id), refusal=refusal)


def remove_app(ctx: AppContext, *, client_id: str, by: str | None = None) -> None:
    """Remove the app: its credentials, grants and tokens stop working on every host within CACHE_SECONDS (SPEC
    §14), and the sessions of its screens (the device authorization grant: sessions for this app alone) end
    with reason app_removed, freeing their seats; `by` names who removed it in the audit stream when it is
    not an operator (its own registration). The app goes first: no approval or redemption of its screens
    commits after it (each checks it is registered), so none is left out of the ending."""
    try:
        app_store(ctx).delete(client_id)
    except AppMissing:
        raise AppNotFound() from None
    streams = StreamStore(ctx.dynamodb, ctx.tables.app_streams)
    streams.delete(client_id)  # what it acknowledged, of its pushes and of its back-channel logouts
    streams.delete(client_id + BACKCHANNEL_STREAM_SUFFIX)
    _cache.forget(ctx.tables.apps, client_id)
    screens = sessions.end_screens_of(ctx, client_id=client_id, reason=RevokeReason.APP_REMOVED)
    audit(AuditEvent.APP_REMOVED, client_id=client_id, by=by, screens_ended=screens)


# --- authenticating an app ----------------------------------------------------------------

def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) of an HTTP Basic header (RFC 7617; RFC 6749 §2.3.1 form-encodes
    both before joining them), or None."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip() or len(encoded) > 1024:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        return None
    return unquote(client_id), unquote(secret)


def authenticate_app(ctx: AppContext, authorization: str | None) -> AppRecord:
    """The app whose Basic credentials `authorization` carries; InvalidClient otherwise."""
    credentials = basic_credentials(authorization)
    if credentials is None:
        raise InvalidClient()
    client_id, secret = credentials
    app = _cache.get(ctx, client_id) if len(client_id) <= 64 else None
    # Digests compared in constant time whether or not the app exists.
    known = app.secret_digest if app else _digest(secrets.token_urlsafe(16))
    if not digests_equal(_digest(secret), known) or app is None:
        raise InvalidClient()
    return app


def secret_matches(app: AppRecord, secret: str) -> bool:
    """Whether `secret` is the app's client secret (digests compared in constant time)."""
    return not app.public_client and digests_equal(_digest(secret), app.secret_digest)


class _AppCache:
    """client_id -> (read at, record or None) per apps table, for CACHE_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, AppRecord | None]] = {}

    def get(self, ctx: AppContext, client_id: str) -> AppRecord | None:
        key, now = (ctx.tables.apps, client_id), time.monotonic()
        with self._lock:
            cached = self._entries.get(key)
        if cached and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        app = app_store(ctx).get(client_id)
        with self._lock:
            if len(self._entries) > 10_000:  # unknown ids tried at random must not grow it without end
                self._entries.clear()
            self._entries[key] = (now, app)
        return app

    def forget(self, table: str, client_id: str) -> None:
        with self._lock:
            self._entries.pop((table, client_id), None)


_cache = _AppCache()

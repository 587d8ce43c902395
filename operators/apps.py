"""Operators and the app registry (SPEC §15): an admin lists, adds, changes and removes apps and OpenID
Connect clients and rotates their secrets through the admin API, with the same service functions as
`citylogin apps`. Every change is audited with the operator."""
from __future__ import annotations

import dataclasses
from typing import Any

from accounts.models import Role
from relying_parties import registration_tokens
from relying_parties import service as apps
from relying_parties.models import OPERATOR_FIELDS, AppRecord, NewCredentials, OidcClient
from operators.models import AppChange, NewApp, NewRegistrationToken, RegistrationTokenView
from operators.service import Operator, need
from common.config import Settings
from common.web.audit import AuditEvent, audit, operator_acting
from common.runtime.context import AppContext

# RFC 9101's (request objects): as lists and flags, like the fields above
REQUEST_OBJECT_FIELDS = ("request_uris", "request_object_signing_alg", "allow_unsigned_request_objects",
                         "require_signed_request_object")

OIDC_FIELDS = ("redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri", "consent", "id_token_alg",
               "require_par", "require_dpop", "require_pkce", "jwks", "web_origins", "device_flow", "device_class",
               "profile", "jwks_uri", "logo_uri", "client_uri", "policy_uri", "tos_uri", "contacts",
               "userinfo_signed_response_alg", "token_endpoint_auth_method", "grant_types", *REQUEST_OBJECT_FIELDS)
# The admin API's RFC 7591 member names of OidcClient fields named otherwise
OIDC_NAMES = {"token_endpoint_auth_method": "registered_auth_method"}


def _public(settings: Settings, app: AppRecord) -> dict[str, Any]:
    """The app as an operator sees it, with the PKCE rule it signs in under (SPEC §14)."""
    return app.public(pkce_required_of_every_app=settings.oidc_require_pkce)


def list_apps(ctx: AppContext, *, operator: Operator) -> list[dict[str, Any]]:
    need(operator, Role.ADMIN)
    return [_public(ctx.settings, app) for app in apps.list_apps(ctx)]


def show_app(ctx: AppContext, *, operator: Operator, client_id: str) -> dict[str, Any]:
    need(operator, Role.ADMIN)
    return _public(ctx.settings, apps.show_app(ctx, client_id=client_id))


def _shown(settings: Settings, credentials: NewCredentials) -> dict[str, Any]:
    return {**_public(settings, credentials.app), "client_secret": credentials.client_secret}


def _audited(operator: Operator, action: str, client_id: str, reason: str | None) -> None:
    audit(AuditEvent.OPERATOR_ACTION, action=action, client_id=client_id, **operator.details(),
          reason=(reason or "").strip() or None)


def add_app(ctx: AppContext, *, operator: Operator, request: NewApp) -> dict[str, Any]:
    """A new app, as `citylogin apps add`; its secret is in the answer, once."""
    need(operator, Role.ADMIN)
    oidc = OidcClient(redirect_uris=tuple(request.redirect_uris or ()), public=request.public,
                      post_logout_redirect_uris=tuple(request.post_logout_redirect_uris or ()),
                      backchannel_logout_uri=request.backchannel_logout_uri, consent=bool(request.consent),
                      id_token_alg=request.id_token_alg or OidcClient.id_token_alg,
                      require_par=bool(request.require_par), require_dpop=bool(request.require_dpop),
                      require_pkce=bool(request.require_pkce), jwks=request.jwks,
                      web_origins=tuple(request.web_origins or ()), device_flow=bool(request.device_flow),
                      device_class=request.device_class or OidcClient.device_class,
                      request_uris=tuple(request.request_uris or ()),
                      request_object_signing_alg=request.request_object_signing_alg,
                      allow_unsigned_request_objects=bool(request.allow_unsigned_request_objects),
                      require_signed_request_object=bool(request.require_signed_request_object),
                      profile=request.profile, **_registration_metadata(request))
    with operator_acting(operator.label):
        credentials = apps.add_app(ctx, name=request.name, push_url=request.push_url, oidc=oidc,
                                   admin_role=request.admin_role.value if request.admin_role else None)
        _audited(operator, "app_add", credentials.app.client_id, request.reason)
    return _shown(ctx.settings, credentials)


def _registration_metadata(request: AppChange) -> dict[str, Any]:
    """The OidcClient fields of the request's RFC 7591 members."""
    return {"jwks_uri": request.jwks_uri, "logo_uri": request.logo_uri, "client_uri": request.client_uri,
            "policy_uri": request.policy_uri, "tos_uri": request.tos_uri, "contacts": tuple(request.contacts or ()),
            "userinfo_signed_response_alg": request.userinfo_signed_response_alg,
            "registered_auth_method": request.token_endpoint_auth_method,
            "grant_types": tuple(dict.fromkeys(request.grant_types or ()))}


def change_app(ctx: AppContext, *, operator: Operator, client_id: str, request: AppChange) -> dict[str, Any]:
    """The fields the request gives change; the OpenID Connect ones as a whole, from the app's current ones."""
    need(operator, Role.ADMIN)
    given = request.model_fields_set - {"reason"}
    oidc = None
    if given & set(OIDC_FIELDS):
        oidc = _oidc_changed(apps.show_app(ctx, client_id=client_id), request, given)
    with operator_acting(operator.label):
        app = apps.update_app(ctx, client_id=client_id, name=request.name, push_url=request.push_url, oidc=oidc,
                              admin_role=request.admin_role.value if request.admin_role else None,
                              verified=bool(request.verified),
                              changed=frozenset(given & {"name", "push_url", "admin_role", "verified"}),
                              set_by_operator=operator_set(given))
        _audited(operator, "app_change", client_id, request.reason)
    return _public(ctx.settings, app)


def operator_set(given: set[str]) -> frozenset[str]:
    """The fields of OPERATOR_FIELDS a change names: the device flow is one of the app's grants."""
    return frozenset({"grant_types" if name == "device_flow" else name for name in given} & set(OPERATOR_FIELDS))


def _oidc_changed(app: AppRecord, request: AppChange, given: set[str]) -> OidcClient:
    """The app's OpenID Connect fields with those the request gives; every other field (the registration's
    metadata among them) stays as it is."""
    now = app.oidc()
    changes = {OIDC_NAMES.get(name, name): getattr(request, name) for name in OIDC_FIELDS if name in given}
    for name in ("redirect_uris", "post_logout_redirect_uris", "web_origins", "contacts", "grant_types",
                 "request_uris"):
        if name in changes:
            changes[name] = tuple(changes[name] or ())
    for name in ("consent", "require_par", "require_dpop", "require_pkce", "device_flow",
                 "allow_unsigned_request_objects", "require_signed_request_object"):
        if name in changes:
            changes[name] = bool(changes[name])
    for name, default in (("id_token_alg", OidcClient.id_token_alg), ("device_class", OidcClient.device_class)):
        if name in changes:
            changes[name] = changes[name] or default
    return dataclasses.replace(now, **changes)


def rotate_secret(ctx: AppContext, *, operator: Operator, client_id: str, reason: str | None) -> dict[str, Any]:
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        credentials = apps.rotate_secret(ctx, client_id=client_id)
        _audited(operator, "app_rotate_secret", client_id, reason)
    return _shown(ctx.settings, credentials)


def remove_app(ctx: AppContext, *, operator: Operator, client_id: str, reason: str | None) -> None:
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        apps.remove_app(ctx, client_id=client_id)
        _audited(operator, "app_remove", client_id, reason)


# --- initial access tokens for apps that register themselves (RFC 7591) -------------------------------

def make_registration_token(ctx: AppContext, *, operator: Operator,
                            request: NewRegistrationToken) -> RegistrationTokenView:
    """A new initial access token, as `citylogin apps registration-token`; the token is in the answer, once."""
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        made = registration_tokens.make_token(ctx, expires_in=request.expires_in, uses=request.uses,
                                              created_by=operator.label)
        audit(AuditEvent.OPERATOR_ACTION, action="registration_token_add", initial_access=made.record.token_id,
              **operator.details(), reason=(request.reason or "").strip() or None)
    return RegistrationTokenView(**made.record.public(), token=made.token)


def list_registration_tokens(ctx: AppContext, *, operator: Operator) -> list[RegistrationTokenView]:
    need(operator, Role.ADMIN)
    return [RegistrationTokenView(**token.public()) for token in registration_tokens.list_tokens(ctx)]


def revoke_registration_token(ctx: AppContext, *, operator: Operator, token_id: str, reason: str | None) -> None:
    need(operator, Role.ADMIN)
    with operator_acting(operator.label):
        registration_tokens.revoke_token(ctx, token_id=token_id)
        audit(AuditEvent.OPERATOR_ACTION, action="registration_token_revoke", initial_access=token_id,
              **operator.details(), reason=(reason or "").strip() or None)

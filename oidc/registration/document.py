"""An app's registration as RFC 7591 §3.2.1 and RFC 7592 §3 answer it: its client_id, its secret when it is
handed out (at registration, or sent back in a PUT), every metadata member the app holds under its
standard name (those holding nothing left out), and how to manage the registration."""
from __future__ import annotations

import json
from typing import Any

from relying_parties.models import AppRecord

AUTHORIZATION_CODE = "authorization_code"


def registration_client_uri(issuer: str, client_id: str) -> str:
    return f"{issuer}/oidc/register/{client_id}"


def registration_document(app: AppRecord, *, issuer: str, access_token: str,
                          client_secret: str | None = None) -> dict[str, Any]:
    """The registration of `app`; `access_token` is the registration access token the app holds (handed out
    at registration, or the one it presented), `client_secret` its secret where it may be told it."""
    oidc = app.oidc()
    grant_types = list(oidc.grant_types) or [AUTHORIZATION_CODE]
    document: dict[str, Any] = {
        "client_id": app.client_id, "client_id_issued_at": app.created_epoch,
        **({} if oidc.public else {"client_secret_expires_at": 0}),
        **({"client_secret": client_secret} if client_secret else {}),
        "client_name": app.name, "redirect_uris": list(oidc.redirect_uris), "grant_types": grant_types,
        "response_types": ["code"] if AUTHORIZATION_CODE in grant_types else [],
        "token_endpoint_auth_method": oidc.token_endpoint_auth_method(), "subject_type": "public",
        "id_token_signed_response_alg": oidc.id_token_alg,
        "post_logout_redirect_uris": list(oidc.post_logout_redirect_uris),
        "require_pushed_authorization_requests": oidc.require_par, "dpop_bound_access_tokens": oidc.require_dpop,
        "require_signed_request_object": oidc.require_signed_request_object,
        "registration_access_token": access_token,
        "registration_client_uri": registration_client_uri(issuer, app.client_id),
    }
    optional = {"backchannel_logout_uri": oidc.backchannel_logout_uri, "jwks_uri": oidc.jwks_uri,
                "jwks": json.loads(oidc.jwks) if oidc.jwks else None,
                "userinfo_signed_response_alg": oidc.userinfo_signed_response_alg, "logo_uri": oidc.logo_uri,
                "client_uri": oidc.client_uri, "policy_uri": oidc.policy_uri, "tos_uri": oidc.tos_uri,
                "contacts": list(oidc.contacts) or None, "request_uris": list(oidc.request_uris) or None,
                "request_object_signing_alg": oidc.request_object_signing_alg}
    return {**document, **{name: value for name, value in optional.items() if value is not None}}

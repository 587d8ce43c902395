"""Refusals an operator can see (SPEC §14): each refused authorization, PAR, token or revocation request
is logged once at INFO (the endpoint, the client the request names, the OAuth `error` and a finer
reason) and counted by those in /metrics (citylogin_oidc_refusals_total), so that an app's failure to
sign in has a visible cause. Only those fields are written: never the request's code, token, verifier,
secret, state, assertion or error_description (which may echo what was sent).

The labels stay few: the endpoint and the error are the protocol's, the reason one of the constants
handed to `because` in this package; the client_id, which anybody may write into a request, is in the
log line only."""
from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Any, TypeVar

from authlib.oauth2 import OAuth2Error
from flask import has_request_context
from flask import request as flask_request

from common.web import metrics

log = logging.getLogger("citylogin.oidc.refusals")

AUTHORIZE, PAR, TOKEN, REVOKE, LOGOUT, OTHER = "authorize", "par", "token", "revoke", "logout", "other"
# The Flask endpoints of /oidc (oidc.views) by what the metric calls them.
ENDPOINTS = {"oidc.authorize": AUTHORIZE, "oidc.authorize_form": AUTHORIZE, "oidc.complete": AUTHORIZE,
             "oidc.complete_with_device": AUTHORIZE, "oidc.cancel": AUTHORIZE,
             "oidc.pushed_authorization_request": PAR, "oidc.token": TOKEN, "oidc.revoke": REVOKE,
             "oidc.logout": LOGOUT, "oidc.logout_form": LOGOUT}
CODE = re.compile(r"[a-z0-9_]{1,64}")
SHOWN_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no space: one token in a log line
UNREADABLE = "(unreadable)"

E = TypeVar("E", bound=OAuth2Error)


def because(error: E, reason: str) -> E:
    """`error` with the finer reason the log and the metric give for it (a constant: it is a label)."""
    error.reason = reason
    return error


def reason_of(error: OAuth2Error) -> str | None:
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) and CODE.fullmatch(reason) else None


def refused(error: OAuth2Error, *, endpoint: str | None = None, client_id: str | None = None,
            oauth_request: Any = None) -> None:
    """Log and count one refusal. The endpoint and the client default to the Flask request's (and, at
    the back-channel endpoints, to the client Authlib authenticated, if it did)."""
    where = endpoint or _endpoint()
    code = error.error if isinstance(error.error, str) and CODE.fullmatch(error.error) else OTHER
    reason = reason_of(error) or code
    client = shown_client_id(client_id if client_id is not None else claimed_client_id(oauth_request))
    metrics.OIDC_REFUSALS.labels(where, code, reason).inc()
    log.info("OpenID Provider refused a request: endpoint=%s client_id=%s error=%s reason=%s",
             where, client, code, reason,
             extra={"oidc_refusal": {"endpoint": where, "client_id": client, "error": code, "reason": reason}})


def _endpoint() -> str:
    return ENDPOINTS.get(flask_request.endpoint or "", OTHER) if has_request_context() else OTHER


def shown_client_id(client_id: str | None) -> str:
    """The client_id as a log line may carry it: what was sent, if it is one printable token."""
    if not client_id:
        return "-"
    return client_id if SHOWN_CLIENT_ID.fullmatch(client_id) else UNREADABLE


def claimed_client_id(oauth_request: Any = None) -> str | None:
    """The client a back-channel request is from: the one Authlib authenticated, else the client_id of
    the body or of HTTP Basic credentials (never the secret)."""
    client = getattr(oauth_request, "client", None)
    if client is not None:
        return str(client.client_id)
    if not has_request_context():
        return None
    sent = flask_request.values.get("client_id")
    return sent if sent is not None else _basic_user(flask_request.headers.get("Authorization"))


def _basic_user(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error):
        return UNREADABLE
    user, colon, _secret = decoded.partition(":")
    return user if colon else UNREADABLE

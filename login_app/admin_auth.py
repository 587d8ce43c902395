"""Who calls the admin API (SPEC §15): a person's own session (the guard's check: token, DPoP proof of a
bound session, the session read) whose account holds an operator role now, or an app's client-credentials
token whose app holds one now (read from its record on every call)."""
from __future__ import annotations

from common.context import ctx
from flows import operators
from oidc import service as oidc
from sessions.guard import authenticate_request, credentials


def authenticate_operator() -> operators.Operator:
    """The operator behind the request; 401 without a valid token, 403 forbidden without a role."""
    scheme, token = credentials()
    if scheme == "Bearer":
        app = oidc.admin_app_of(ctx(), token)
        if app is not None:
            return operators.app_operator(client_id=app.client_id, admin_role=app.admin_role)
    return operators.session_operator(ctx(), principal=authenticate_request())

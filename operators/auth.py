"""Who calls the admin API (SPEC §15): a person's own session (the guard's check: token, DPoP proof of a
bound session, the session read) whose account holds an operator role now, or an app's client-credentials
token whose app holds one now (read from its record on every call)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from common.database.batch_read import KeyRead
from operators import service as operators
from oidc import service as oidc
from sessions.guard import authenticate_request, credentials
from common.runtime.context import ctx


def authenticate_operator(*, along: Callable[[], Mapping[str, KeyRead[Any]]] | None = None) -> operators.Operator:
    """The operator behind the request; 401 without a valid token, 403 forbidden without a role. A
    session's operator account, and the records `along()` names once the token verified, are read in the
    session's own BatchGetItem (in `Operator.along`); for an app's credential `along` is never called."""
    scheme, token = credentials()
    if scheme == "Bearer":
        app = oidc.admin_app_of(ctx(), token)
        if app is not None:
            return operators.app_operator(client_id=app.client_id, admin_role=app.admin_role)
    principal = authenticate_request(along=lambda claims: {
        **(along() if along else {}), **operators.operator_reads(ctx().tables, user_uuid=claims["sub"])})
    return operators.session_operator(ctx(), principal=principal)

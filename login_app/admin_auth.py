"""Who calls the admin API (SPEC §15): a person's own session (the guard's check: token, DPoP proof of a
bound session, the session read) whose account holds an operator role now."""
from __future__ import annotations

from common.context import ctx
from flows import operators
from sessions.guard import authenticate_request


def authenticate_operator() -> operators.Operator:
    """The operator behind the request; 401 without a valid token, 403 forbidden without a role."""
    return operators.session_operator(ctx(), principal=authenticate_request())

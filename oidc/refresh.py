"""An app's rotating refresh token (SPEC §14 with §4's rules): one per grant, rotated on every use,
never outliving the citylogin session. Its text is derived, not stored:
`<session_id>.<client_id>.<grant_id>.<generation>.<kid>.<mac>` under the key ring's refresh secret
`kid`, so the grant record keeps only the current generation. A token older than the current one
is a reuse (a copy, or a client that lost track): the whole session ends (refresh_reuse), as for
citylogin's own refresh tokens, and every app of it hears so."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace

from authlib.oauth2.rfc6749 import InvalidGrantError

from common.audit import AuditEvent, audit
from common.context import AppContext
from common.errors import ApiError
from common.crypto import digests_equal, keyed_token
from common.guarded_write import GuardedWrite, write_all
from oidc import token_binding
from oidc.models import AppRefresh, SignedIn
from oidc.store import GrantStore
from sessions import service as sessions
from sessions.models import RevokeReason

_SESSION_ID = re.compile(r"^[0-9a-f-]{36}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_GRANT_ID = re.compile(r"^[0-9a-f]{16,32}$")
_KID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_GENERATION_DIGITS = 9


@dataclass(frozen=True)
class _Parts:
    session_id: str
    client_id: str
    grant_id: str
    generation: int
    kid: str


def new_grant_id() -> str:
    return secrets.token_hex(8)


def token_text(ctx: AppContext, user: SignedIn, *, client_id: str) -> str:
    """The refresh token `user` (a grant at its next generation) gets, under the newest refresh secret."""
    text = _text(ctx, _Parts(user.session_id, client_id, user.grant_id, user.refresh_generation,
                             ctx.refresh_secrets.newest_kid()))
    assert text is not None  # the newest kid is in the ring
    return text


def _text(ctx: AppContext, parts: _Parts) -> str | None:
    secret = ctx.refresh_secrets.get(parts.kid)
    if secret is None:  # a retired or made-up kid
        return None
    head = f"{parts.session_id}.{parts.client_id}.{parts.grant_id}.{parts.generation}.{parts.kid}"
    return f"{head}.{keyed_token(secret, f'oidc_refresh:{head}')}"


def _parse(token: object) -> _Parts | None:
    if not isinstance(token, str) or len(token) > 512:
        return None
    parts = token.split(".")
    if len(parts) != 6:
        return None
    session_id, client_id, grant_id, generation, kid, _mac = parts
    if not (_SESSION_ID.match(session_id) and _CLIENT_ID.match(client_id) and _GRANT_ID.match(grant_id)
            and generation.isdigit() and len(generation) <= MAX_GENERATION_DIGITS and generation.isascii()
            and _KID.match(kid)):
        return None
    return _Parts(session_id, client_id, grant_id, int(generation), kid)


def presented(ctx: AppContext, token: object) -> AppRefresh | None:
    """The grant a presented refresh token is of, if its MAC holds and the grant is still the one it
    was issued for; None for anything else (invalid_grant). Nothing is written yet: the client's
    authentication and the scope are checked first."""
    parts = _parse(token)
    expected = _text(ctx, parts) if parts else None
    if parts is None or expected is None or not digests_equal(expected, str(token)):
        return None
    grant = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=parts.session_id,
                                                                   client_id=parts.client_id)
    if grant is None or not grant.refresh_gen or not digests_equal(grant.grant_id, parts.grant_id):
        return None
    return AppRefresh(grant=grant, generation=parts.generation)


def rotate(ctx: AppContext, refresh: AppRefresh, *, dpop_required: bool) -> SignedIn:
    """Moves the grant to the next generation in one transaction with the session's liveness: the
    person behind the new tokens. A rotated-out token ends the session (reuse detection). A bound
    refresh token counts only with a proof by its key, before anything else is looked at."""
    grant = refresh.grant
    key = token_binding.request_key(bound_to=grant.jkt, required=dpop_required)
    session = sessions.live_session(ctx, session_id=grant.session_id, user_uuid=grant.user_uuid,
                                    device_id=grant.device_id)
    if session is None:
        raise InvalidGrantError("The citylogin session of this refresh token has ended.")
    if refresh.generation < grant.refresh_gen:
        audit(AuditEvent.REFRESH_TOKEN_REUSED, user_uuid=grant.user_uuid, device_id=grant.device_id,
              session_id=grant.session_id, generation=refresh.generation, client_id=grant.client_id)
        sessions.revoke_session(ctx, session=session, reason=RevokeReason.REFRESH_REUSE)
        raise InvalidGrantError("This refresh token was used before: the session has ended.")
    if refresh.generation > grant.refresh_gen:
        raise InvalidGrantError()
    store = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants)
    write_while_live(ctx, [
        sessions.session_live_check(ctx, session),
        GuardedWrite(item=store.rotate_item(grant, generation=refresh.generation),
                     refusal=lambda: InvalidGrantError("This refresh token was used at the same moment."))])
    return replace(grant.signed_in(refresh_generation=refresh.generation + 1), jkt=key)


def write_while_live(ctx: AppContext, writes: list[GuardedWrite]) -> None:
    """`writes` (the first the session's liveness check) in one transaction; a session that ended
    meanwhile is the token endpoint's invalid_grant, not a 401 of citylogin's own API."""
    try:
        write_all(ctx.dynamodb, writes)
    except ApiError as error:
        if error.status != 401:
            raise
        raise InvalidGrantError("The citylogin session of this grant has ended.") from None

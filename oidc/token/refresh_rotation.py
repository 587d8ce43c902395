"""The use of an app's refresh token (SPEC §14 with §4's rules; its text is oidc.token.refresh_tokens'): each use
moves the grant to its next generation in one conditional write with the session's liveness (rotate; a FAPI 2.0
app's token is kept, kept). The token just rotated out, sent again within CITYLOGIN_REFRESH_REUSE_GRACE (a retry,
two tabs, two app hosts, on any process), gets that same successor pair and ends nothing; an older one, or one
after the grace, is a reuse (a copy, or a client that lost track): that app's grant on the session ends and the app
is told by back channel (oidc.app_grants.ending), while the device's citylogin session and other apps' grants go
on."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError

from common.config import Settings
from common.database.guarded_write import GuardedWrite
from accounts.service import AccountNotFound
from oidc.core import claims
from oidc.app_grants import ending as grants
from oidc.core import dpop
from oidc.core.live_writes import write_while_live
from oidc.core.models import AppRefresh, Grant, SignedIn
from oidc.core.store import GrantMoved, GrantStore
from sessions import service as sessions
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

ROTATE_ATTEMPTS = 3  # a parallel rotation of the same token came first: read again, answer by the grace
# A kept token's uses at once each move the grant on: of those that read one generation one writes, so
# this many uses at once all succeed (each fails at most once per other use).
KEPT_ATTEMPTS = 8

def kept(ctx: AppContext, refresh: AppRefresh, *, dpop_required: bool,
         dpop_algorithms: tuple[str, ...] | None = None) -> SignedIn:
    """A FAPI 2.0 app's refresh (FAPI 2.0 SP §5.3.2.1-10: no rotation): the person behind the grant's next
    access token, answered with the same refresh token, while the session lives. The grant moves on a
    generation (one conditional write with the session's liveness; a parallel use that came first is read
    again), which names the new access token; any token of the grant counts, so a client that lost an
    answer retries with the token it holds. The token is bound to the client, whose private_key_jwt the
    token endpoint checked, not to a DPoP key (RFC 9449 §5): the new access token is bound to the key of
    this request's proof, which is required."""
    key = dpop.request_key(bound_to=None, required=dpop_required, algorithms=dpop_algorithms)
    grant = refresh.grant
    for _ in range(KEPT_ATTEMPTS):
        grant = _read_again(ctx, grant)  # the grant as it stands: a kept token's generation lags it
        if refresh.generation > grant.refresh_gen:
            raise InvalidGrantError()
        try:
            return replace(_next(ctx, grant, key=key, person=None), kept_refresh=refresh.text)
        except GrantMoved:
            continue
    raise InvalidGrantError(f"This refresh token was used more than {KEPT_ATTEMPTS} times at once: try again.")


def rotate(ctx: AppContext, refresh: AppRefresh, *, dpop_required: bool) -> SignedIn:
    """The person behind the grant's next tokens, while the session lives. The current token moves
    the grant to the next generation (one conditional write with the session's liveness); the one
    just rotated out, within the grace, gets the same successor pair again, writing nothing; any
    older one ends the app's grant (reuse). A bound refresh token counts only with a proof by its
    key, before anything else is looked at. A token whose grant was not read (it carries what the
    grant says) is first taken as the current one: the write's condition holds it to the grant, and a
    refusal reads the grant to answer as above. The person's claims the token carries (read now for one
    that carries none) are checked by the same write: an account that changed since gives its claims as
    it is now, and the write is tried again with them."""
    grant = refresh.grant
    key = dpop.request_key(bound_to=grant.jkt, required=dpop_required)
    person = refresh.person
    for _ in range(ROTATE_ATTEMPTS):
        if refresh.generation > grant.refresh_gen:
            raise InvalidGrantError()
        if refresh.generation < grant.refresh_gen:
            return _rotated_out(ctx, grant, generation=refresh.generation)
        if person is None:  # a token that carries no claims: the account is read (once) for them
            person = claims.of_user(ctx, user_uuid=grant.user_uuid, scope=grant.scope)
        try:
            return _next(ctx, grant, key=key, person=person)
        except GrantMoved:
            grant = _read_again(ctx, grant)
        except claims.PersonChanged as changed:
            if changed.account is None:
                raise AccountNotFound() from None
            person = claims.of_account(changed.account, scope=grant.scope)
    raise InvalidGrantError("This refresh token was used at the same moment.")


def _next(ctx: AppContext, grant: Grant, *, key: str | None, person: dict[str, Any] | None) -> SignedIn:
    """Rotate: the grant's next generation, recorded with what forms its pair again (its moment, the
    newest refresh secret, the access token's key), in one transaction with the session's liveness
    (not read first: the write's check of it refuses a session that has ended) and, given `person`, the
    check that the account still gives those claims of the grant's scope. GrantMoved if a parallel use
    rotated first; PersonChanged if the account changed."""
    now, kid = int(ctx.now().timestamp()), ctx.refresh_secrets.newest_kid()
    item = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).rotate_item(
        grant, generation=grant.refresh_gen, now=now, kid=kid, jkt=key)
    live = sessions.live_check_of(ctx, session_id=grant.session_id, user_uuid=grant.user_uuid,
                                  device_id=grant.device_id)
    writes = [live, GuardedWrite(item=item, refusal=GrantMoved)]
    given = (claims.still_given(ctx, user_uuid=grant.user_uuid, person=person, scope=grant.scope)
             if person is not None else None)
    if given is not None:
        writes.append(given)  # last: a session's end or a parallel rotation is told first
    write_while_live(ctx.dynamodb, writes)
    return replace(grant.signed_in(refresh_generation=grant.refresh_gen + 1), jkt=key, issued_epoch=now,
                   refresh_kid=kid, person=person)


def _read_again(ctx: AppContext, grant: Grant) -> Grant:
    """The grant after a refused rotation: the same grant, moved on by a parallel use; invalid_grant if
    it was replaced or revoked meanwhile."""
    moved = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=grant.session_id,
                                                                 client_id=grant.client_id)
    if moved is None or moved.grant_id != grant.grant_id:
        raise InvalidGrantError("This app's grant on the session was replaced or has ended.")
    return moved


def _rotated_out(ctx: AppContext, grant: Grant, *, generation: int) -> SignedIn:
    """A token older than the current one: within the grace the pair its rotation gave, again
    (§4: parallel refreshes of one app must not log it out); else a reuse, which ends the app's grant
    on the session and tells the app, and nothing else."""
    # Neither path writes with the session's check (the pair again writes nothing; a reuse of an
    # ended session's token has nothing left to end), so the session is read here.
    if sessions.live_session(ctx, session_id=grant.session_id, user_uuid=grant.user_uuid,
                             device_id=grant.device_id) is None:
        raise InvalidGrantError("The citylogin session of this refresh token has ended.")
    if _within_grace(ctx.settings, grant, generation=generation, now=ctx.epoch()):
        return _same_successor(ctx, grant)
    audit(AuditEvent.REFRESH_TOKEN_REUSED, user_uuid=grant.user_uuid, device_id=grant.device_id,
          session_id=grant.session_id, generation=generation, client_id=grant.client_id)
    grants.end_grant(ctx, session_id=grant.session_id, client_id=grant.client_id, reason=grants.REFRESH_REUSE,
                     grant_id=grant.grant_id)
    raise InvalidGrantError("This refresh token was used before: the app's grant on this session has ended.")


def _within_grace(settings: Settings, grant: Grant, *, generation: int, now: int) -> bool:
    """The token the grant's last rotation (recorded by this release) retired, CITYLOGIN_REFRESH_REUSE_GRACE
    seconds before `now` (epoch seconds) at most."""
    return (generation == grant.refresh_gen - 1 and grant.rotated_gen == grant.refresh_gen
            and now - grant.rotated_epoch <= settings.refresh_reuse_grace)


def _same_successor(ctx: AppContext, grant: Grant) -> SignedIn:
    """The person behind the last rotation's pair, formed again as it was: its moment, refresh secret
    and key (the access token's signature is deterministic, EdDSA). Its secret retired since (a ring
    rotation within the grace): invalid_grant, ending nothing."""
    if grant.refresh_kid is None or ctx.refresh_secrets.get(grant.refresh_kid) is None:
        raise InvalidGrantError("This refresh token was rotated; use its successor.")
    # The claims as the account gives them now, as the rotation's write found them (unless they changed
    # since): the successor refresh token carries them, and the ID token tells them.
    person = claims.of_user(ctx, user_uuid=grant.user_uuid, scope=grant.scope)
    return replace(grant.signed_in(refresh_generation=grant.refresh_gen), jkt=grant.rotated_jkt,
                   issued_epoch=grant.rotated_epoch, refresh_kid=grant.refresh_kid, person=person)


"""A code's redemption, the write that gives the app its grant (SPEC §14): one transaction records the grant on
the session and the request's redemption mark (oidc.token.codes: single use) only while

- the session lives (a session that ended meanwhile gives the app nothing),
- the app is registered (an operator removed it: the code gives nothing),
- for an app added with --consent, the person's consent stands as it stood when the code was given
  (withdrawn since, or withdrawn and given again, it does not),
- the person did not sign the app out of the session, nor withdraw its consent, after the code was given
  (the grant row's PERSON_ENDED, which every later grant on the session keeps).

A live grant the new one replaces (the app signing the person in again on the session) ends in the same
transaction, with its event, so that the app's guards refuse its tokens as userinfo and introspection do.
Nothing is read first: the code names the grant it found when it was given (oidc.authorization.authorize reads it with
the request), the grant row's refusal carries the row as it is if that changed, and the write is tried again
against it. Every refusal is invalid_grant (RFC 6749 §5.2); nothing of a refused redemption is written."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError

from relying_parties import service as apps
from relying_parties.models import AppRecord
from common.errors import ServiceUnavailable
from common.database import dynamo
from common.database.guarded_write import GuardedWrite
from oidc.token import codes
from oidc.app_grants import consents
from oidc.app_grants import ending as grants
from oidc.core.kept_request import REQUEST_TTL
from oidc.core.live_writes import write_while_live
from oidc.core.context import grant_store, one_time_tokens
from oidc.core.models import Code, Grant
from oidc.core.store import PERSON_ENDED, CodeNotSpent, GrantMoved, RequestStore
from sessions import service as sessions
from common.runtime.context import AppContext

ATTEMPTS = 3  # the app's grant on the session replaced or revoked meanwhile: tried again against the new row


class GrantInTheWay(dynamo.StoreRefusal):
    """The grant row refused the redemption's write: `item` is the row as it was (None: there was none)."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("grant in the way")
        self.item = item


def redeem(ctx: AppContext, *, code: Code, grant: Grant, app: AppRecord) -> None:
    """Record `grant`, the one `code` gives `app`, and spend the code, in one transaction: InvalidGrantError
    if any rule of the module refuses it, CodeNotSpent if a code of its request was redeemed before (a
    replay, which the caller answers: replayed)."""
    replacing = code.replacing  # the app's grant on the session when the code was given: first guess
    for _ in range(ATTEMPTS):
        try:
            writes = _writes(ctx, code=code, grant=grant, app=app, replacing=replacing)
            write_while_live(ctx.dynamodb, writes)
            return
        except GrantInTheWay as refused:
            replacing = _live_grant_to_replace(refused.item, code=code)
    raise ServiceUnavailable("The app's grant is busy; try again.")


def replayed(ctx: AppContext, code: Code) -> None:
    """RFC 6749 §4.1.2: a code used twice revokes what it gave (its refresh tokens die with the grant,
    its access tokens are refused at once), and the app, which holds an ID token of the session, is
    told by Back-Channel Logout in the revocation's own transaction (oidc.app_grants.ending). Only while the
    app's grant on the session is still the one a code of this request gave (a later sign-in replaced
    it and its tokens already); the session and other apps' grants go on. The first redemption may
    have been on another session: the request's mark names it."""
    requests = RequestStore(one_time_tokens(ctx))
    session_id = requests.redeemed_session(digest=code.request_digest) or code.session_id
    given, request_digest = grant_store(ctx).given_by(session_id=session_id, client_id=code.client_id)
    if given is not None and request_digest == code.request_digest:
        grants.end_grant(ctx, session_id=session_id, client_id=code.client_id,
                         reason=grants.CODE_REPLAY, grant_id=given.grant_id)


def _live_grant_to_replace(item: dict[str, Any] | None, *, code: Code) -> str | None:
    """The live grant the redemption replaces, as the refused write found the row (None: none, or a revoked
    one, whose end was told already); InvalidGrantError if the person ended the app's sign-in on the
    session after the code was given."""
    if item is None:
        return None
    ended = int((item.get(PERSON_ENDED) or {}).get("N", "0"))
    if ended >= code.issued_ms:
        raise InvalidGrantError("The person signed this app out of the session after this code was given.")
    if "revoked" in item or "grant_id" not in item:
        return None
    return str(item["grant_id"]["S"])


def _writes(ctx: AppContext, *, code: Code, grant: Grant, app: AppRecord, replacing: str | None) -> list[GuardedWrite]:
    """The redemption's transaction, its refusals in the order they are told: the session's end, a replay,
    the app's removal, the consent's withdrawal, then the grant row's."""
    now = ctx.epoch()
    recorded = grant_store(ctx).redeem_item(grant, request_digest=code.request_digest, now=now,
                                            expires_epoch=code.session_expires_epoch, issued_ms=code.issued_ms,
                                            replacing=replacing)
    # Every code of the request ends by now + its request's life + a code's: the mark outlives them all.
    marked = RequestStore(one_time_tokens(ctx)).redeem_item(
        digest=code.request_digest, session_id=code.session_id, user_uuid=code.user_uuid,
        keep_until=now + REQUEST_TTL + codes.CODE_TTL)
    # The session keeps the app by its name now: an ended session still lists the apps it held.
    writes = [sessions.live_check_of(ctx, session_id=code.session_id, user_uuid=code.user_uuid,
                                     device_id=code.device_id, app=(app.client_id, app.name)),
              GuardedWrite(item=marked, refusal=CodeNotSpent),
              apps.still_registered(ctx, client_id=app.client_id, refusal=_removed)]
    if app.oidc().consent:
        writes.append(consents.still_given(ctx, user_uuid=code.user_uuid, client_id=app.client_id,
                                           issued_ms=code.issued_ms, refusal=_consent_withdrawn))
    writes.append(GuardedWrite(item=recorded, refusal=GrantMoved, refusal_of_item=GrantInTheWay))
    if replacing is not None:  # told to the app's CAEP streams (its guards); not a logout: it signed in again
        writes.append(sessions.grant_ending(ctx.tables, session_id=code.session_id, user_uuid=code.user_uuid,
                                            device_id=code.device_id, client_id=app.client_id, grant_id=replacing,
                                            reason=grants.REPLACED, at_ms=ctx.epoch_ms()))
    return writes


def _removed() -> Exception:
    return InvalidGrantError("This app was removed after this code was given.")


def _consent_withdrawn() -> Exception:
    return InvalidGrantError("The person has not allowed this app, or withdrew their consent after this code "
                             "was given.")

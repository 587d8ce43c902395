"""A code's redemption, the write that gives the app its grant (SPEC §14): one transaction records the grant on
the session and the request's redemption mark (oidc.codes: single use) only while

- the session lives (a session that ended meanwhile gives the app nothing),
- the app is registered (an operator removed it: the code gives nothing),
- for an app added with --consent, the person's consent stands as it stood when the code was given
  (withdrawn since, or withdrawn and given again, it does not),
- the person did not sign the app out of the session, nor withdraw its consent, after the code was given
  (the grant row's PERSON_ENDED, which every later grant on the session keeps).

Every refusal is invalid_grant (RFC 6749 §5.2); nothing of a refused redemption is written."""
from __future__ import annotations


from authlib.oauth2.rfc6749 import InvalidGrantError

from apps import service as apps
from apps.models import AppRecord
from common.context import AppContext
from common.guarded_write import GuardedWrite
from oidc import codes, consents, refresh
from oidc.authorization_request import REQUEST_TTL
from oidc.context import epoch, grant_store, one_time_tokens
from oidc.models import Code, Grant
from oidc.store import CodeNotSpent, RequestStore
from sessions import service as sessions


def redeem(ctx: AppContext, *, code: Code, grant: Grant, app: AppRecord) -> None:
    """Record `grant`, the one `code` gives `app`, and spend the code, in one transaction: InvalidGrantError
    if any rule of the module refuses it, CodeNotSpent if a code of its request was redeemed before (a
    replay, which the caller answers)."""
    refresh.write_while_live(ctx, _writes(ctx, code=code, grant=grant, app=app))


def _writes(ctx: AppContext, *, code: Code, grant: Grant, app: AppRecord) -> list[GuardedWrite]:
    """The redemption's transaction, its refusals in the order they are told: the session's end, a replay,
    the app's removal, the consent's withdrawal, then the person's sign-out."""
    now = epoch(ctx)
    recorded = grant_store(ctx).redeem_item(grant, request_digest=code.request_digest, now=now,
                                            expires_epoch=code.session_expires_epoch, issued_ms=code.issued_ms)
    # Every code of the request ends by now + its request's life + a code's: the mark outlives them all.
    marked = RequestStore(one_time_tokens(ctx)).redeem_item(
        digest=code.request_digest, session_id=code.session_id, user_uuid=code.user_uuid,
        keep_until=now + REQUEST_TTL + codes.CODE_TTL)
    writes = [sessions.live_check_of(ctx, session_id=code.session_id, user_uuid=code.user_uuid,
                                     device_id=code.device_id),
              GuardedWrite(item=marked, refusal=CodeNotSpent),
              apps.still_registered(ctx, client_id=app.client_id, refusal=_removed)]
    if app.oidc().consent:
        writes.append(consents.still_given(ctx, user_uuid=code.user_uuid, client_id=app.client_id,
                                           issued_ms=code.issued_ms, refusal=_consent_withdrawn))
    writes.append(GuardedWrite(item=recorded, refusal=_signed_out))
    return writes


def _signed_out() -> Exception:
    return InvalidGrantError("The person signed this app out of the session after this code was given.")


def _removed() -> Exception:
    return InvalidGrantError("This app was removed after this code was given.")


def _consent_withdrawn() -> Exception:
    return InvalidGrantError("The person has not allowed this app, or withdrew their consent after this code "
                             "was given.")

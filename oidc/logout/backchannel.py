"""OpenID Connect Back-Channel Logout 1.0 (SPEC §14): every app that was given an ID token of a
citylogin session and registered a back-channel logout URI is POSTed a logout token when that session
ends, for any reason, and when its own grant on the session is revoked without its asking (a code
used twice, a refresh token reused after the grace: oidc.app_grants.ending). It rides the same outbox as the CAEP
events (the session-ended feed, written in the ending's or the revocation's own transaction: nothing
ends untold) and the same pusher (relying_parties.push): at least once, retried with backoff for 24 hours, one
process per app at a time, each app with its own cursor and acknowledgements for this channel.

Each app hears one logout per sign-in: an event of a session the app holds no grant of is
acknowledged without a request, and so is the session's end after the app was told of its grant's
revocation (same sid: the app has nothing left to end); a grant revocation is told unless the app
signed in to the session again since (a newer grant: its old sign-in was replaced already) or asked
for it (RFC 7009: its event is there for the app's CAEP streams, the guards of its API servers)."""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from common.log_bursts import BurstLogs
from common.outbound.fetch import FetchFailed
from relying_parties import outbound
from relying_parties.models import BACKCHANNEL_STREAM_SUFFIX, AppRecord
from relying_parties.push import PUSH_DEADLINE
from oidc.app_grants import ending as grants
from oidc.core.store import GrantStore
from sessions.models import SessionEnded
from common.runtime.context import AppContext

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
LOGOUT_TOKEN_TTL = 120  # seconds: the app checks it on arrival; a retry signs a fresh one

log = logging.getLogger("oidc.backchannel")  # the name its log lines have always had


def logout_token(ctx: AppContext, event: SessionEnded, app: AppRecord) -> str:
    """The logout token of `event` for `app` (Back-Channel Logout 1.0 §2.4), signed with the app's
    ID-token algorithm; its jti is the same at every retry, so the app can tell a repeat."""
    now = ctx.epoch()
    claims = {"iss": ctx.public_url().rstrip("/"), "aud": app.client_id, "iat": now, "exp": now + LOGOUT_TOKEN_TTL,
              "jti": f"{event.seq}.{app.client_id}", "sub": event.user_uuid, "sid": event.session_id,
              "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    return ctx.jwt.sign_jwt(claims, algorithm=app.oidc().id_token_alg, typ=LOGOUT_TOKEN_TYPE)


class BackchannelLogout:
    """The pusher's channel: apps with a back-channel logout URI, the logout tokens of their grants."""

    name = "backchannel-logout"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.grants = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants)
        self._failures = BurstLogs(log)  # why a delivery failed, once a burst per app (the app is not told)

    def wants(self, app: AppRecord) -> bool:
        return bool(app.oidc().backchannel_logout_uri)

    def key(self, app: AppRecord) -> str:
        return app.client_id + BACKCHANNEL_STREAM_SUFFIX

    def tells(self, event: SessionEnded, app: AppRecord) -> bool:
        """Whether `event` is news to `app` (the module's rule: one logout per sign-in)."""
        if not event.session_ended and not (event.client_id == app.client_id and event.reason in grants.TOLD):
            return False  # one grant's revocation: heard only by its own app, and not when the app asked
        grant = self.grants.record(session_id=event.session_id, client_id=app.client_id)
        if not event.session_ended:
            return grant is None or grant.grant_id == event.grant_id
        return grant is not None and not grants.told_already(grant)

    def deliver(self, event: SessionEnded, app: AppRecord) -> bool:
        if not self.tells(event, app):
            return True  # nothing to tell this app: acknowledged without a request
        body = urlencode({"logout_token": logout_token(self.ctx, event, app)}).encode()
        try:
            answer = outbound.post(self.ctx.settings, app, app.oidc().backchannel_logout_uri or "", body=body,
                                   deadline_seconds=PUSH_DEADLINE,
                                   headers={"Content-Type": "application/x-www-form-urlencoded",
                                            "Accept": "application/json"})
        except FetchFailed as failed:
            self._failures.log(app.client_id, logging.WARNING, "%s to app %s: %s", self.name, app.client_id,
                               failed.reason)
            return False
        return answer.status in (200, 204)  # §2.8: 200; some frameworks answer 204

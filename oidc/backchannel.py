"""OpenID Connect Back-Channel Logout 1.0 (SPEC §14): when a citylogin session ends, for any reason,
every app that holds tokens of it (its grant in oidc_grants) and registered a back-channel logout URI
is POSTed a logout token. It rides the same outbox as the CAEP events (the session-ended feed, written
in the ending's own transaction: no session ends without it) and the same pusher (apps.push): at least
once, retried with backoff for 24 hours, one process per app at a time, each app with its own cursor
and acknowledgements for this channel. An event of a session the app holds no tokens of is
acknowledged without a request."""
from __future__ import annotations

import requests

from apps.models import BACKCHANNEL_STREAM_SUFFIX, AppRecord
from apps.push import PUSH_TIMEOUT
from common.context import AppContext
from oidc.store import GrantStore
from sessions.models import SessionEnded

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE = "logout+jwt"
LOGOUT_TOKEN_TTL = 120  # seconds: the app checks it on arrival; a retry signs a fresh one


def logout_token(ctx: AppContext, event: SessionEnded, app: AppRecord) -> str:
    """The logout token of `event` for `app` (Back-Channel Logout 1.0 §2.4), signed with the app's
    ID-token algorithm; its jti is the same at every retry, so the app can tell a repeat."""
    now = int(ctx.now().timestamp())
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

    def wants(self, app: AppRecord) -> bool:
        return bool(app.oidc().backchannel_logout_uri)

    def key(self, app: AppRecord) -> str:
        return app.client_id + BACKCHANNEL_STREAM_SUFFIX

    def deliver(self, http: requests.Session, event: SessionEnded, app: AppRecord) -> bool:
        if self.grants.get(session_id=event.session_id, client_id=app.client_id) is None:
            return True  # the app holds no tokens of this session: nothing to tell it
        try:
            response = http.post(app.oidc().backchannel_logout_uri or "",
                                 data={"logout_token": logout_token(self.ctx, event, app)},
                                 timeout=PUSH_TIMEOUT, headers={"Accept": "application/json"})
        except requests.RequestException:
            return False
        return response.status_code in (200, 204)  # §2.8: 200; some frameworks answer 204

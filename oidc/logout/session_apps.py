"""The apps signed in on a person's live sessions (SPEC §14: each app that was given an ID token of the
session holds a grant on it), by name, and the person signing one of them out of one session: that app's
grant ends, the app is told by Back-Channel Logout (oidc.app_grants.ending: the revocation writes its own outbox
event), and the session and the other apps' grants stay. No Flask here."""
from __future__ import annotations

import re

from relying_parties import service as apps
from relying_parties.registry import app_registry
from common.errors import ErrorCode, NotFound
from common.database.guarded_write import GuardedWrite
from oidc.app_grants import ending as grants
from sessions import service as sessions
from sessions.models import Principal, SessionRecord, SignedInApp
from common.runtime.context import AppContext

CLIENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")  # anything else names no app (and no DynamoDB key)


class AppNotSignedIn(NotFound):
    code, detail = ErrorCode.APP_NOT_FOUND, "This app is not signed in on this session."


def _names(ctx: AppContext) -> dict[str, str]:
    return {app.client_id: app.name for app in app_registry(ctx).current().apps}


def _name(ctx: AppContext, client_id: str, names: dict[str, str | None]) -> str | None:
    """The app's name: from the registry as this process last read it, else (added a moment ago, or
    removed) read now; None for an app removed (its tokens are refused everywhere: SPEC §14)."""
    if client_id not in names:
        try:
            names[client_id] = apps.show_app(ctx, client_id=client_id).name
        except apps.AppNotFound:
            names[client_id] = None
    return names[client_id]


def signed_in_apps(ctx: AppContext, *, session_ids: list[str]) -> dict[str, list[SignedInApp]]:
    """For each of the sessions (live ones: an ended session's apps were told it ended), the apps that
    hold a grant on it and are still registered, by name, ordered by name."""
    if not session_ids:
        return {}
    names: dict[str, str | None] = dict(_names(ctx))
    found: dict[str, list[SignedInApp]] = {}
    for session_id in session_ids:
        held = [SignedInApp(client_id=g.client_id, name=name) for g in grants.store(ctx).live_of(session_id)
                if (name := _name(ctx, g.client_id, names)) is not None]
        found[session_id] = sorted(held, key=lambda app: (app.name.casefold(), app.client_id))
    return found


def sign_app_out(ctx: AppContext, *, principal: Principal, session_id: str, client_id: str) -> None:
    """End `client_id`'s grant on the caller's live session `session_id` (SessionNotFound for a session
    that is not the caller's; AppNotSignedIn when the app holds no grant on it, or the session ended):
    only while the session is live, in the revocation's own transaction, so that an app whose session
    ended meanwhile is not told twice."""
    session = sessions.own_session(ctx, user_uuid=principal.user_uuid, session_id=session_id)
    if not CLIENT_ID.match(client_id) or sessions.session_status(ctx.settings, session, ctx.epoch())[0] != "active":
        raise AppNotSignedIn()
    ended = grants.end_grant(ctx, session_id=session_id, client_id=client_id, reason=grants.SIGNED_OUT_BY_PERSON,
                             checks=[_still_live(ctx, session)])
    if not ended:
        raise AppNotSignedIn()


def _still_live(ctx: AppContext, session: SessionRecord) -> GuardedWrite:
    # The session ending meanwhile ended the app's sign-in with it: this one has nothing left to end.
    return GuardedWrite(item=sessions.session_live_check(ctx, session).item, refusal=AppNotSignedIn)

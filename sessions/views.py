"""HTTP routes of /session: parse, call one service function, shape the answer. What a route asks of the
packages above sessions/ (a tab resuming its session, the apps signed in, an app's introspection) it asks of
the SessionFlows that the service mounting this blueprint gives (flows.for_sessions)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from flask import Blueprint, Response, jsonify, request

from common.slots import Slot
from common.timefmt import iso_from_epoch
from sessions import service, sweeper
from sessions.binding import ProofOffer
from sessions.guard import current_principal, proof_offer, require_session
from sessions.introspection_models import Introspection, IntrospectionRequest
from sessions.models import (CurrentSession, EventsQuery, HistoryPage, HistoryQuery, ListedSession, LogoutAllRequest,
                             Principal, RefreshRequest, ResumeRequest, ResumedSession, SessionList, SessionListQuery,
                             SessionRecord, SessionView, SignedInApp, TokenResponse)
from common.runtime.context import EXTENSION_KEY, AppContext, ctx
from common.web.openapi import operation
from common.web.serving import stream_body
from common.web.validation import parse_body, parse_model, parse_optional_body


class SessionFlows(Protocol):
    """What /session asks of the packages above sessions/."""

    def resume_session(self, ctx: AppContext, *, body: ResumeRequest, offer: ProofOffer | None) -> ResumedSession:
        """flows.session_resume: another tab's access token of its device's live session."""

    def signed_in_apps(self, ctx: AppContext, *, session_ids: list[str]) -> dict[str, list[SignedInApp]]:
        """oidc.session_apps: the apps signed in on each of these live sessions."""

    def sign_app_out(self, ctx: AppContext, *, principal: Principal, session_id: str, client_id: str) -> None:
        """oidc.session_apps: one app out of one of the caller's live sessions."""

    def introspection_for(self, ctx: AppContext, authorization: str | None) -> Callable[[str], dict[str, Any]]:
        """flows.app_introspection: the introspection of the app these credentials are of."""


FLOWS: Slot[SessionFlows] = Slot("sessions.views.flows")

bp = Blueprint("session_manager", __name__, url_prefix="/session")
bp.record_once(lambda state: state.app.extensions[EXTENSION_KEY].slots.needed(FLOWS))  # given, or no app
bp.record_once(lambda state: sweeper.start_sweeper(state.app.extensions[EXTENSION_KEY]))


def _flows() -> SessionFlows:
    return ctx().slots.needed(FLOWS)


def _view(session: SessionRecord, *, current_id: str) -> SessionView:
    status, reason = service.session_status(ctx().settings, session, ctx().epoch())
    return SessionView(
        session_id=session.session_id, device_id=session.device_id, device_name=session.device_name,
        created_at=session.created_at, last_seen_at=iso_from_epoch(session.last_seen_epoch),
        expires_at=iso_from_epoch(session.expires_epoch), ip=session.ip, user_agent=session.user_agent,
        current=session.session_id == current_id, status=status, revoked_reason=reason,
        device_class=session.device_class or "other", screen_app=session.screen_name)


def _listed(session: SessionRecord, *, current_id: str, apps: dict[str, list[SignedInApp]]) -> ListedSession:
    """A live session with the apps signed in on it now (`apps`); an ended one with those its record kept."""
    view = _view(session, current_id=current_id)
    held = apps.get(session.session_id) if view.status == "active" else [
        SignedInApp(client_id=client_id, name=name) for client_id, name in session.apps_signed_in()]
    return ListedSession(**view.model_dump(), apps=held or [])


@bp.post("/refresh")
@operation("Rotate the refresh token", body=RefreshRequest, response=TokenResponse, errors=(401,))
def refresh() -> Response:
    body = parse_body(RefreshRequest)
    pair = service.refresh(ctx(), refresh_token=body.refresh_token, offer=proof_offer())
    return jsonify(TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                                 token_type=pair.token_type, expires_in=pair.expires_in).model_dump())


@bp.post("/resume")
@operation("Another tab resumes its device's live session: the device key signs a fresh challenge and a DPoP "
           "proof; a bound access token of that session, without a refresh token", body=ResumeRequest,
           response=ResumedSession, errors=(400, 401, 403))
def resume() -> Response:
    body = parse_body(ResumeRequest)
    return jsonify(_flows().resume_session(ctx(), body=body, offer=proof_offer()).model_dump())


@bp.post("/introspect")
@operation("RFC 7662 introspection for apps: is this access token active, and whose is it", auth="app",
           body=IntrospectionRequest, body_media_type="application/x-www-form-urlencoded", response=Introspection)
def introspect() -> Response:
    introspect = _flows().introspection_for(ctx(), request.headers.get("Authorization"))  # the app's 401 first
    form = parse_model(IntrospectionRequest, request.form.to_dict())
    return jsonify(introspect(form.token))


@bp.get("/check")
@require_session(forwarded=True)
@operation("Forward authentication for proxies (nginx auth_request): 204 with the caller in X-Citylogin-* headers",
           status=204, auth=True)
def check() -> tuple[str, int, dict[str, str]]:
    principal = current_principal()
    return "", 204, {"X-Citylogin-User": principal.user_uuid, "X-Citylogin-Session": principal.session_id,
                     "X-Citylogin-Device": principal.device_id}


@bp.get("/me")
@require_session
@operation("The current session", response=CurrentSession, auth=True)
def me() -> Response:
    principal = current_principal()
    body = _view(principal.session, current_id=principal.session_id).model_dump()
    return jsonify(user_uuid=principal.user_uuid, **body)


@bp.get("/list")
@require_session
@operation("The caller's sessions, newest first: live ones unless include_ended", query=SessionListQuery,
           response=SessionList, auth=True)
def list_sessions() -> Response:
    principal, query = current_principal(), parse_model(SessionListQuery, request.args.to_dict())
    sessions, next_cursor = service.session_page(ctx(), user_uuid=principal.user_uuid, limit=query.limit,
                                                 cursor=query.cursor or None, include_ended=query.include_ended)
    # The apps signed in on the live sessions now (an ended session's come from its record).
    now = ctx().epoch()
    live = [s.session_id for s in sessions if service.session_status(ctx().settings, s, now)[0] == "active"]
    apps = _flows().signed_in_apps(ctx(), session_ids=live)
    views = [_listed(s, current_id=principal.session_id, apps=apps) for s in sessions]
    return jsonify(SessionList(sessions=views, next_cursor=next_cursor).model_dump())


@bp.delete("/<uuid:session_id>")
@require_session
@operation("End one of the caller's sessions", status=204, auth=True)
def delete_session(session_id: UUID) -> tuple[str, int]:
    service.revoke_own_session(ctx(), principal=current_principal(), session_id=str(session_id))
    return "", 204


@bp.delete("/<uuid:session_id>/apps/<client_id>")
@require_session
@operation("Sign one app out of one of the caller's live sessions: the app's grant ends and the app is told by "
           "Back-Channel Logout; the session and the other apps stay", status=204, auth=True)
def sign_app_out(session_id: UUID, client_id: str) -> tuple[str, int]:
    _flows().sign_app_out(ctx(), principal=current_principal(), session_id=str(session_id), client_id=client_id)
    return "", 204


@bp.post("/logout")
@require_session
@operation("End the current session", status=204, auth=True)
def logout() -> tuple[str, int]:
    service.logout(ctx(), principal=current_principal())
    return "", 204


@bp.post("/logout_all")
@require_session
@operation("End every session of the caller", body=LogoutAllRequest, body_required=False, status=204, auth=True)
def logout_all() -> tuple[str, int]:
    body = parse_optional_body(LogoutAllRequest)
    service.logout_all(ctx(), principal=current_principal(), include_current=body.include_current)
    return "", 204


@bp.get("/history")
@require_session
@operation("Login attempts and evictions, newest first", query=HistoryQuery, response=HistoryPage, auth=True)
def history() -> Response:
    query = parse_model(HistoryQuery, request.args.to_dict())
    items, next_cursor = service.history_page(ctx(), user_uuid=current_principal().user_uuid,
                                              limit=query.limit, cursor=query.cursor or None)
    # the history store's items are dicts; pydantic validates each into a HistoryItem
    return jsonify(HistoryPage(items=items, next_cursor=next_cursor).model_dump())  # type: ignore[arg-type]


@bp.get("/events")
@require_session(allow_query_token=True)
@operation("Server-Sent Events: session_revoked {reason, by_device, admin_action, by_app, by_app_name} when "
           "this session ends", auth=True, query=EventsQuery, media_type="text/event-stream")
def events() -> Response:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if request.method == "HEAD":  # no body to carry events: opens no stream, so replaces none and counts none
        return Response(b"", mimetype="text/event-stream", headers=headers)
    stream = service.event_stream(ctx(), principal=current_principal())
    return Response(stream_body(stream, request.environ), mimetype="text/event-stream", headers=headers)

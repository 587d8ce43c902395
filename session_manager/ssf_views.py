"""HTTP routes of /ssf: the apps' poll for session-revoked events (RFC 8936, SPEC §11). The
transmitter's metadata, /.well-known/ssf-configuration, is on every service (common.app_factory)."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from apps import delivery, push
from apps import service as apps
from apps.models import PollRequest, PollResponse
from common.context import EXTENSION_KEY, ctx
from common.openapi import operation
from common.validation import parse_body

bp = Blueprint("ssf", __name__, url_prefix="/ssf")
bp.record_once(lambda state: push.start_pusher(state.app.extensions[EXTENSION_KEY]))


@bp.post("/poll")
@operation("RFC 8936 poll: the app's unacknowledged session-revoked events; acknowledges those in `ack`",
           auth="app", body=PollRequest, response=PollResponse)
def poll():
    app = apps.authenticate_app(ctx(), request.headers.get("Authorization"))
    body = parse_body(PollRequest)
    sets, more = delivery.poll(ctx(), app, max_events=body.max_events, return_immediately=body.return_immediately,
                               acks=body.ack)
    return jsonify(PollResponse(sets=sets, moreAvailable=more).model_dump())

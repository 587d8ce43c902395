"""HTTP routes of /ssf: the apps' poll for session-revoked events (RFC 8936, SPEC §11), on the app's
own stream or on a receiver's (SSF stream management), and the process's pusher (RFC 8935). The
transmitter's metadata, /.well-known/ssf-configuration, is on every service (common.web.app_factory)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from relying_parties import delivery, push
from relying_parties import service as apps
from relying_parties.models import (AppRecord, PollRequest, PollResponse, StreamConfiguration, StreamQuery,
                                    StreamRequest)
from common.runtime.context import EXTENSION_KEY, ctx
from common.web.openapi import operation
from common.web.validation import parse_model, parse_optional_body

bp = Blueprint("ssf", __name__, url_prefix="/ssf")
bp.record_once(lambda state: push.start_pusher(state.app.extensions[EXTENSION_KEY]))


@bp.post("/poll")
@operation("RFC 8936 poll: the app's unacknowledged session-revoked events; acknowledges those in `ack`",
           auth="app", body=PollRequest, response=PollResponse)
def poll() -> Response:
    app = apps.authenticate_app(ctx(), request.headers.get("Authorization"))
    return _poll(app, stream_id=None)


@bp.post("/poll/<stream_id>")
@operation("RFC 8936 poll of one receiver's stream (POST /ssf/streams): its own unacknowledged events",
           auth="app", body=PollRequest, response=PollResponse, errors=(404,))
def poll_stream(stream_id: str) -> Response:
    app = apps.authenticate_app(ctx(), request.headers.get("Authorization"))
    return _poll(app, stream_id=stream_id)


def _poll(app: AppRecord, *, stream_id: str | None) -> Response:
    body = parse_optional_body(PollRequest)
    sets, more = delivery.poll(ctx(), app, max_events=body.max_events, return_immediately=body.return_immediately,
                               acks=body.ack, stream_id=stream_id)
    return jsonify(PollResponse(sets=sets, moreAvailable=more).model_dump())


@bp.post("/streams")
@operation("SSF stream management: a poll stream of its own for one receiver (e.g. each process of an app's API)",
           auth="app", body=StreamRequest, body_required=False, response=StreamConfiguration, status=201)
def create_stream() -> tuple[Response, int]:
    app = apps.authenticate_app(ctx(), request.headers.get("Authorization"))
    parse_optional_body(StreamRequest)
    stream_id = delivery.create_stream(ctx(), app)
    base = ctx().public_url().rstrip("/")
    return jsonify(StreamConfiguration.of(stream_id, issuer=ctx().jwt.issuer, client_id=app.client_id,
                                          endpoint_url=f"{base}/ssf/poll/{stream_id}").model_dump()), 201


@bp.delete("/streams")
@operation("End a receiver's poll stream", auth="app", query=StreamQuery, status=204, errors=(404,))
def delete_stream() -> tuple[str, int]:
    app = apps.authenticate_app(ctx(), request.headers.get("Authorization"))
    query = parse_model(StreamQuery, request.args.to_dict())
    delivery.delete_stream(ctx(), app, query.stream_id)
    return "", 204

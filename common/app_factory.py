"""Builds a Flask app for one service or for all of them: config, context, errors, CORS,
and the operational routes every service exposes (SPEC §3)."""
from __future__ import annotations

import logging
import re
from typing import Any, Iterable, Mapping

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, Flask, current_app, jsonify, request
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from common import dynamo
from common.config import load_settings
from common.context import EXTENSION_KEY, AppContext, build_context, ctx
from common.errors import ServiceUnavailable, register_error_handlers
from common.openapi import openapi_document

MAX_BODY_BYTES = 64 * 1024
VERSION = "0.1.0"


class _RedactTokens(logging.Filter):
    """Request logs must not carry the event stream's ?access_token= (SPEC §6: no secrets in logs)."""

    PATTERN = re.compile(r"(access_token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message:
            record.msg, record.args = self.PATTERN.sub(r"\1[redacted]", message), ()
        return True


_REDACT = _RedactTokens()


def create_service_app(*, name: str, blueprints: Iterable[Blueprint],
                       test_config: Mapping[str, Any] | None = None,
                       context: AppContext | None = None) -> Flask:
    """An app serving `blueprints` plus /healthz, /readyz, /openapi.json and the JWKS."""
    settings = context.settings if context else load_settings(test_config)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.addFilter(_REDACT)
    werkzeug_log.setLevel(settings.log_level.upper())  # else werkzeug logs every request at INFO
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)
    app.json.sort_keys = False
    app.extensions[EXTENSION_KEY] = context or build_context(settings)
    register_error_handlers(app)
    if settings.cors_origins:
        CORS(app, origins=settings.cors_origins, expose_headers=["Retry-After", "WWW-Authenticate"])
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.register_blueprint(_operations_blueprint(name))
    app.before_request(_read_body_first)
    app.after_request(_no_store_for_api)
    return app


def _read_body_first() -> None:
    # Read every request body (at most 64 KiB) before answering, even where a view ignores it:
    # gunicorn's threaded worker otherwise drains a late body after the response and may
    # swallow the client's next keep-alive request with it (bench/README.md).
    if request.content_length or request.headers.get("Transfer-Encoding"):
        request.get_data(cache=True)


def _no_store_for_api(response):
    # Tokens and keys must never sit in a cache; API answers are cheap to recompute.
    if response.mimetype in ("application/json", "application/problem+json", "text/event-stream"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _operations_blueprint(title: str) -> Blueprint:
    ops = Blueprint("operations", __name__)

    @ops.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @ops.get("/readyz")
    def readyz():
        context = ctx()
        try:
            missing = dynamo.missing_tables(context.dynamodb, context.tables)
        except (BotoCoreError, ClientError):
            raise ServiceUnavailable("DynamoDB is not reachable.") from None
        if missing:
            raise ServiceUnavailable("DynamoDB tables are missing.", missing_tables=missing)
        return jsonify(status="ready")

    @ops.get("/openapi.json")
    def openapi():
        return jsonify(openapi_document(current_app, title=title, version=VERSION))

    @ops.get("/.well-known/jwks.json")
    def jwks():
        response = jsonify(ctx().jwt.jwks())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    return ops


def run_standalone(factory, *, default_port: int) -> None:
    """Serve one app with Flask's threaded server (development; use gunicorn in production)."""
    app = factory()
    settings = app.extensions[EXTENSION_KEY].settings
    app.run(host=settings.host, port=settings.port or default_port, threaded=True)

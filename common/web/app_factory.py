"""Builds a Flask app for one service or for all of them: config, context, errors, CORS,
and the operational routes every service exposes (SPEC §3)."""
from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, NoReturn

import boto3
import orjson
from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                 NoRegionError)
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask_cors import CORS
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_input_stream

from common import brand
from common.config import DEVELOPMENT_PUBLIC_URL, ConfigError, Settings, env_name, load_settings
from common.errors import ServiceUnavailable, StorageUnavailable
from common.log_bursts import BurstFilter
from common.version import running_version
from common.database import dynamo
from common.slots import Given
from common.mail.sender import start_sender
from common.runtime.context import EXTENSION_KEY, AppContext, build_context, ctx
from common.web.error_handlers import register_error_handlers
from common.web.log_setup import configure_logging
from common.web.metrics import instrument_dynamodb, metrics_blueprint
from common.web.openapi import openapi_document
from common.web.request_log import HEADER as REQUEST_ID_HEADER
from common.web.request_log import install_request_log, remember_route
from common.web.url_rules import BuilderCachingRule

MAX_BODY_BYTES = 64 * 1024
MAX_DRAINED_BYTES = 8 * 1024 * 1024  # an over-limit body up to this size is read before its 413


class _RedactTokens(logging.Filter):
    """Request logs must not carry a secret sent in a query string (SPEC §6: no secrets in logs): the
    event stream's ?access_token=, and what the OpenID Provider's browser requests carry by the standard
    (RP-initiated logout's id_token_hint, a pushed request's request_uri, a login_hint)."""

    PATTERN = re.compile(r"(?<=[?&])((?:access_token|id_token_hint|request_uri|login_hint|code|refresh_token"
                         r"|client_secret|client_assertion)=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "=" in message and self.PATTERN.search(message):
            record.msg, record.args = self.PATTERN.sub(r"\1[redacted]", message), ()
        return True


_REDACT = _RedactTokens()


class AnswerJSON(DefaultJSONProvider):
    """Flask's JSON with the keys of an answer in the order the code builds them, written by orjson
    (several times faster than the json module on an answer); what orjson does not write itself (dates,
    dataclasses, decimals) goes to Flask's own fallback, so an answer says what it said before."""

    sort_keys = False
    _OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # indent, sort_keys...: the json module's options
            return super().dumps(obj, **kwargs)
        return orjson.dumps(obj, default=self.default, option=self._OPTIONS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return super().loads(s, **kwargs) if kwargs else orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        if (self.compact is None and self._app.debug) or self.compact is False:  # pretty-printed, as Flask does
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        answer: Any = self._app.response_class
        return answer(orjson.dumps(obj, default=self.default, option=self._OPTIONS) + b"\n", mimetype=self.mimetype)


# At DEBUG these log whole requests and responses: password hashes, token digests, SigV4 headers;
# Authlib logs every token it issues and the client records it checks (secret digests).
_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "authlib")


_CREDENTIAL_REFRESHES = BurstFilter()


def _quiet_credential_refreshes() -> None:
    """botocore logs each failed refresh of temporary credentials with its traceback, once per
    waiting caller: one line per burst instead (a request that fails for it logs its own 503 line)."""
    logger = logging.getLogger("botocore.credentials")
    if _CREDENTIAL_REFRESHES not in logger.filters:
        logger.addFilter(_CREDENTIAL_REFRESHES)


class _ServiceApp(Flask):
    url_rule_class = BuilderCachingRule  # each rule's URL builders compiled once per process


def create_service_app(*, name: str, blueprints: Iterable[Blueprint], given: Iterable[Given[Any]] = (),
                       test_config: Mapping[str, Any] | None = None,
                       context: AppContext | None = None) -> Flask:
    """An app serving `blueprints` plus /healthz, /readyz, /openapi.json and /metrics; `given`: what the
    blueprints ask of the packages above them (common.slots), put in first. Under gunicorn a
    start that cannot work (a bad or missing setting, a wrong key-encryption key, no DynamoDB) stops
    with one line naming what to set, not a traceback."""
    from_environment = test_config is None and context is None
    with _one_line(name, from_environment=from_environment):
        settings = context.settings if context else load_settings(test_config)
    configure_logging(settings)
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.addFilter(_REDACT)
    werkzeug_log.setLevel(settings.log_level.upper())  # else werkzeug logs every request at INFO
    for wire_logger in _WIRE_LOGGERS:
        logging.getLogger(wire_logger).setLevel(logging.WARNING)
    _quiet_credential_refreshes()
    app = _ServiceApp(name)
    # One hook before every request, not one per concern: Flask pays a call and a coroutine check per hook.
    app.before_request(_before_every_request)
    app.teardown_request(_stop_using_brand)
    install_request_log(app)  # inside ProxyFix: it logs the client IP that ProxyFix trusts
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    if settings.trusted_proxies:
        # Flask's documented middleware pattern; its types declare wsgi_app a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies)  # type: ignore[method-assign]
    app.json = AnswerJSON(app)
    if context is None:
        with _one_line(name, from_environment=from_environment):
            context = build_context(settings)
            context.settings = with_public_url(context.settings)
    app.extensions[EXTENSION_KEY] = context
    _instrument(app.extensions[EXTENSION_KEY])
    start_sender(context)  # every serving process sends the outbox's due mail
    if context.ring_refresher:
        context.ring_refresher.start()  # publishes a rotated key before any process signs with it
    register_error_handlers(app)
    if settings.cors_origins:
        CORS(app, origins=settings.cors_origins,
             expose_headers=["Retry-After", "WWW-Authenticate", "DPoP-Nonce", REQUEST_ID_HEADER])
    for each in given:
        context.slots.put(each)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    app.register_blueprint(_operations_blueprint(name))
    app.register_blueprint(metrics_blueprint())
    app.after_request(_no_store_for_api)
    return app


def _before_every_request() -> None:
    _use_brand()  # first: every text of the request, an error's too, is the brand's
    remember_route()
    _read_body_first()


def _use_brand() -> None:
    g.brand_tokens = brand.use(ctx().brand)


def _stop_using_brand(_error: BaseException | None) -> None:
    tokens = g.pop("brand_tokens", None)
    if tokens is not None:
        brand.stop_using(tokens)


def under_gunicorn() -> bool:
    """Whether this process is a gunicorn worker (its arbiter sets SERVER_SOFTWARE for its workers)."""
    return os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/")


def with_public_url(settings: Settings) -> Settings:
    """CITYLOGIN_PUBLIC_URL, the address of the web UI in QR codes and mail links: `citylogin serve`
    derives it from what it binds; under gunicorn or against Amazon DynamoDB nothing can, so it is
    required; a development process on a local engine (a standalone service, a test) links to where
    `citylogin serve` puts the web UI by default."""
    if settings.public_url is not None:
        return settings
    if under_gunicorn() or not settings.uses_dynamodb_local:
        raise ConfigError(f"{env_name('public_url')} is required here: the https:// address people open the "
                          "web UI at (QR codes and mail links point there), e.g. https://login.example.com")
    return settings.model_copy(update={"public_url": DEVELOPMENT_PUBLIC_URL})


@contextmanager
def _one_line(name: str, *, from_environment: bool) -> Iterator[None]:
    """A start that cannot work leaves one line naming what to set, not a traceback. Under gunicorn's
    worker, gunicorn prints an AppImportError's message alone and stops the server (rather than starting
    workers again and again). An app made from the environment in any other process (gunicorn's
    `--check-config`, which prints the traceback of any Exception, `flask run`, a service's `python -m`)
    exits with the line. An app made with a test's settings raises as it is."""
    if under_gunicorn():
        from gunicorn.errors import AppImportError

        try:
            yield
        except (ConfigError, *DYNAMODB_START_ERRORS) as exc:
            raise AppImportError(start_problem(exc, name=name)) from None
    elif from_environment:
        try:
            yield
        except (ConfigError, *DYNAMODB_START_ERRORS) as exc:
            stop_start(exc, name=name)
    else:
        yield


def check_start(name: str = "citylogin") -> None:
    """What gunicorn's master checks once before it starts workers (citylogin.server.gunicorn_config): the
    settings, DynamoDB, the key ring under the key-encryption key and CITYLOGIN_PUBLIC_URL. A start
    that cannot work stops here with one line, not in every worker at once."""
    try:
        try_start()
    except (ConfigError, *DYNAMODB_START_ERRORS) as exc:
        raise SystemExit(start_problem(exc, name=name)) from None


def try_start(test_config: Mapping[str, Any] | None = None) -> None:
    """What an app's start does before it serves (the tables and key ring made if configured to, the
    ring read, CITYLOGIN_PUBLIC_URL), without an app or any thread: raises ConfigError or one of
    DYNAMODB_START_ERRORS if a start cannot work."""
    with_public_url(build_context(load_settings(test_config)).settings)


def start_problem(exc: Exception, *, name: str) -> str:
    """One line naming what to set, for a ConfigError or one of DYNAMODB_START_ERRORS."""
    if isinstance(exc, ConfigError):
        return f"{name}: {exc}"
    return dynamodb_start_problem(exc, name=name)


def _instrument(context: AppContext) -> None:
    for client in (context.dynamodb, context.readiness_dynamodb):
        if client is not None:
            instrument_dynamodb(client)


def _read_body_first() -> None:
    # Read every request body (at most 64 KiB) before answering, even where a view ignores it:
    # gunicorn's threaded worker otherwise drains a late body after the response and may
    # swallow the client's next keep-alive request with it (bench/README.md).
    environ = request.environ
    if not (environ.get("CONTENT_LENGTH") or environ.get("HTTP_TRANSFER_ENCODING")):
        return  # no body: asked of the environ, as werkzeug's headers find a missing one by an exception
    if not (request.content_length or request.headers.get("Transfer-Encoding")):
        return
    try:
        request.get_data(cache=True)
    except RequestEntityTooLarge:
        _discard_body()
        raise
    # werkzeug cuts a streamed (chunked) body at the limit without an error: any rest is too much.
    if request.content_length is None and _discard_body():
        raise RequestEntityTooLarge()


def _discard_body() -> int:
    """Read and drop what is left of an over-limit body, up to MAX_DRAINED_BYTES; the bytes dropped."""
    # The same race holds before a 413, and gunicorn ignores an application's "Connection: close":
    # it reads the rest of the body after answering anyway, so reading it first costs nothing
    # more and keeps the connection usable. A body declared larger still is left to the server.
    if (request.content_length or 0) > MAX_DRAINED_BYTES:
        return 0
    stream = get_input_stream(request.environ, max_content_length=None)
    dropped = 0
    while dropped <= MAX_DRAINED_BYTES and (chunk := stream.read(64 * 1024)):
        dropped += len(chunk)
    return dropped


def _no_store_for_api(response: Response) -> Response:
    # Tokens and keys must never sit in a cache; API answers are cheap to recompute. (Not headers.setdefault:
    # werkzeug finds a missing header by raising and catching a BadRequestKeyError, ~5 us an answer.)
    if response.mimetype in ("application/json", "application/problem+json", "text/event-stream") \
            and not response.headers.getlist("Cache-Control"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _operations_blueprint(title: str) -> Blueprint:
    ops = Blueprint("operations", __name__)

    @ops.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", version=running_version())

    @ops.get("/readyz")
    def readyz() -> Response:
        _check_ready(ctx())
        return jsonify(status="ready")

    @ops.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document(current_app, title=title, version=running_version()))

    return ops


def _check_ready(context: AppContext) -> None:
    """503 unless DynamoDB answers within the probe's short timeout and every table exists: one
    BatchGetItem per probe (no ListTables or DescribeTable, which the running role may not have)."""
    try:
        dynamo.probe(context.readiness_dynamodb or context.dynamodb, context.tables)
    except ClientError as exc:
        if dynamo.error_code(exc) == "ResourceNotFoundException":
            raise ServiceUnavailable("DynamoDB tables are missing; run `citylogin init`.") from None
        raise StorageUnavailable("DynamoDB is not reachable.") from None
    except BotoCoreError:
        raise StorageUnavailable("DynamoDB is not reachable.") from None


NO_DYNAMODB = ("{name}: no DynamoDB to use: set CITYLOGIN_DYNAMODB_ENDPOINT_URL (e.g. http://127.0.0.1:8000 with "
               "`citylogin dynamodb-local`) or AWS credentials and region for Amazon DynamoDB")


# What botocore raises at start-up when there is no DynamoDB to use, or none at the endpoint set,
# or one that cannot serve (TLS, credentials, clock skew, throttling: common.database.dynamo.outage_cause).
DYNAMODB_START_ERRORS = (BotoCoreError, ClientError)
_CAUSE_HINTS = {
    "TLS": "the endpoint's certificate is not trusted for its name: check AWS_CA_BUNDLE and the endpoint's host",
    "credentials": "check the AWS credentials (CITYLOGIN_DYNAMODB_LOCAL=true for a DynamoDB Local)",
    "clock skew": "check this host's clock",
}


def dynamodb_start_problem(exc: Exception, *, name: str) -> str:
    """One line naming the setting to fix, for one of DYNAMODB_START_ERRORS."""
    if isinstance(exc, EndpointConnectionError):
        return (f"{name}: cannot reach DynamoDB at {exc.kwargs.get('endpoint_url')}: start it "
                "(`citylogin dynamodb-local`) or correct CITYLOGIN_DYNAMODB_ENDPOINT_URL")
    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return NO_DYNAMODB.format(name=name)
    cause = dynamo.outage_cause(exc)
    if cause is None:
        return f"{name}: DynamoDB: {exc}"
    hint = _CAUSE_HINTS.get(cause)
    return f"{name}: DynamoDB cannot serve ({cause}): {exc}" + (f"; {hint}" if hint else "")


def run_standalone(factory: Callable[[], Flask], *, default_port: int) -> None:
    """Serve one app with Flask's threaded server (development; use gunicorn in production). A start
    that cannot work stops with one line naming what to set: exit 1 for a bad setting, 2 for no DynamoDB."""
    name = _service_name(factory)
    try:
        app = factory()
    except (ConfigError, *DYNAMODB_START_ERRORS) as exc:  # a factory made with a test's settings
        stop_start(exc, name=name)
    settings = app.extensions[EXTENSION_KEY].settings
    app.run(host=settings.host, port=settings.port or default_port, threaded=True)


def stop_start(exc: Exception, *, name: str) -> NoReturn:
    """Stop a start that cannot work with one line naming what to set, no traceback: exit 2 without a DynamoDB
    to use (said first: "a key-encryption key is required against Amazon DynamoDB" follows from it), else 1."""
    if isinstance(exc, ConfigError):
        if _no_dynamodb_configured():
            _stop(NO_DYNAMODB.format(name=name))
        raise SystemExit(f"{name}: {exc}") from None
    _stop(dynamodb_start_problem(exc, name=name))


def _service_name(factory: Callable[[], Flask]) -> str:
    """citylogin-registration for registration.app_registration, also when run as `python -m`."""
    module = factory.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec else "service"
    return "citylogin-" + module.rpartition(".")[2].removeprefix("app_").replace("_", "-")


def _no_dynamodb_configured() -> bool:
    """No endpoint set and no AWS credentials where boto3 looks for them (environment, files, roles)."""
    try:
        settings = load_settings()
    except ConfigError:
        return False
    return not settings.dynamodb_endpoint_url and boto3.session.Session().get_credentials() is None


def _stop(line: str) -> NoReturn:
    print(line, file=sys.stderr)
    raise SystemExit(2)

"""The one handler of errors: ApiError, werkzeug's HTTP errors, a DynamoDB outage and anything unexpected,
each rendered as RFC 9457 problem details (SPEC §3)."""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from common import i18n
from common.errors import (ERROR_KEYS, PROBLEM_JSON, ApiError, ErrorCode, ServiceUnavailable, StorageUnavailable,
                           request_locale)
from common.log_bursts import BurstLog
from common.crypto.hash_slots import HashingBusy
from common.database import dynamo

log = logging.getLogger(__name__)


class HashingBusyError(ServiceUnavailable):
    """Too many password checks at once in this process (common/crypto/hash_slots.py)."""

    detail = "Too many sign-ins at once; try again in a second."

    def __init__(self) -> None:
        retry_after = HashingBusy.RETRY_AFTER
        super().__init__(None, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


_WERKZEUG_CODES = {
    400: ErrorCode.BAD_REQUEST, 404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE, 415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response


def _handle_api_error(error: ApiError) -> Response:
    return problem_response(error.body(request_locale()), error.headers)


def _http_detail(error: HTTPException, status: int, code: ErrorCode) -> str:
    locale = request_locale()
    if locale != i18n.DEFAULT:
        return i18n.text(f"{ERROR_KEYS}{code.value}", locale)
    if status == 413:
        return "The request body is too large."
    return error.description or HTTPStatus(status).phrase  # werkzeug's own errors all have a description


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    code = _WERKZEUG_CODES.get(status, ErrorCode.BAD_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)
    detail = _http_detail(error, status, code)
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "detail": detail, "code": code.value}
    headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    return problem_response(body, headers)


def _handle_unexpected(error: Exception) -> Response:
    # A bug: log it with its trace for operators, tell the client nothing of its insides.
    log.exception("unhandled error")
    return problem_response({"type": "about:blank", "title": "Internal Server Error", "status": 500,
                             "detail": i18n.text("error.internal_error", request_locale()),
                             "code": ErrorCode.INTERNAL_ERROR.value})


def _aws_error_name(error: Exception) -> str:
    code = dynamo.error_code(error) if isinstance(error, ClientError) else ""
    return f"{type(error).__name__} {code}".strip()


def register_error_handlers(app: Flask) -> None:
    """Render ApiError, werkzeug's HTTP errors and anything unexpected as problem+json; a DynamoDB
    outage, timeout, throttling or refusal of the deployment's credentials as 503 with Retry-After,
    logged once per burst, naming the cause, without a trace."""
    outage_log = BurstLog(log)

    def handle_aws_error(error: Exception) -> Response:
        cause = dynamo.outage_cause(error)
        if cause is None:
            return _handle_unexpected(error)
        outage_log.log(logging.WARNING, "DynamoDB unavailable (%s: %s): answering 503", cause, _aws_error_name(error))
        return _handle_api_error(StorageUnavailable())

    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HashingBusy, lambda _busy: _handle_api_error(HashingBusyError()))
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(BotoCoreError, handle_aws_error)
    app.register_error_handler(ClientError, handle_aws_error)
    app.register_error_handler(Exception, _handle_unexpected)

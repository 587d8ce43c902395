"""One error hierarchy, one handler, one envelope: RFC 9457 problem details (SPEC §3)."""
from __future__ import annotations

import logging
from enum import Enum
from http import HTTPStatus
from typing import Any

from flask import has_request_context, request
from pydantic_core import PydanticCustomError

from common import i18n

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ErrorCode(str, Enum):
    """Stable codes clients branch on."""

    INVALID_JSON = "invalid_json"
    MISSING_FIELDS = "missing_fields"
    INVALID_FIELD = "invalid_field"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BAD_REQUEST = "bad_request"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    USERNAME_TAKEN = "username_taken"
    EMAIL_TAKEN = "email_taken"
    INVALID_CREDENTIALS = "invalid_credentials"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_SUPERSEDED = "certificate_superseded"
    INVALID_PROOF = "invalid_proof"
    INVALID_CHALLENGE = "invalid_challenge"
    DEVICE_REVOKED = "device_revoked"
    DEVICE_NOT_REGISTERED = "device_not_registered"
    DEVICE_NOT_FOUND = "device_not_found"
    DEVICE_LIMIT_REACHED = "device_limit_reached"
    LAST_DEVICE = "last_device"
    CONCURRENT_LOGIN = "concurrent_login"
    CONCURRENT_LOGIN_REJECTED = "concurrent_login_rejected"
    DEVICE_CLASS_FULL = "device_class_full"
    INVALID_CONFIRM_TOKEN = "invalid_confirm_token"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    RATE_LIMITED = "rate_limited"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    SESSION_REVOKED = "session_revoked"
    SESSION_NOT_FOUND = "session_not_found"
    INVALID_REFRESH_TOKEN = "invalid_refresh_token"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    # the OpenID Provider's sign-in page (SPEC §14); its protocol errors are RFC 6749's own
    OIDC_REQUEST_UNKNOWN = "oidc_request_unknown"
    OIDC_REQUEST_OTHER_BROWSER = "oidc_request_other_browser"
    OIDC_LOGOUT_UNKNOWN = "oidc_logout_unknown"
    LOGOUT_CONFIRMATION_REQUIRED = "logout_confirmation_required"
    LOGIN_REQUIRED = "login_required"
    CONSENT_REQUIRED = "consent_required"
    CONSENT_NOT_FOUND = "consent_not_found"
    INVALID_USER_CODE = "invalid_user_code"  # RFC 8628: a screen's code, wrong, used or expired
    INVALID_REQUEST = "invalid_request"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_DELETED = "account_deleted"
    ACCOUNT_DELETING = "account_deleting"
    INVALID_QR = "invalid_qr"
    PAIRING_USER_MISMATCH = "pairing_user_mismatch"
    PAIRING_TOKEN_EXPIRED = "pairing_token_expired"
    PAIRING_TOKEN_USED = "pairing_token_used"
    PAIRING_TOKEN_UNKNOWN = "pairing_token_unknown"
    INVALID_RECOVERY_CODE = "invalid_recovery_code"
    RECOVERY_CODES_CHANGED = "recovery_codes_changed"
    INVALID_VERIFICATION_TOKEN = "invalid_verification_token"
    INVALID_RESET_TOKEN = "invalid_reset_token"
    INVALID_NOT_ME_TOKEN = "invalid_not_me_token"
    TOO_MANY_STREAMS = "too_many_streams"
    REQUEST_TIMEOUT = "request_timeout"
    REQUEST_HEADER_TOO_LARGE = "request_header_too_large"
    INVALID_CLIENT = "invalid_client"
    APP_NOT_FOUND = "app_not_found"
    APP_CHANGED = "app_changed"
    STREAM_NOT_FOUND = "stream_not_found"
    MAIL_NOT_FOUND = "mail_not_found"
    INVALID_DPOP_PROOF = "invalid_dpop_proof"
    USE_DPOP_NONCE = "use_dpop_nonce"
    DPOP_REQUIRED = "dpop_required"
    PASSKEY_NOT_FOUND = "passkey_not_found"
    PASSKEY_EXISTS = "passkey_exists"
    PASSKEY_LIMIT_REACHED = "passkey_limit_reached"
    PASSKEY_COUNTER_REGRESSED = "passkey_counter_regressed"
    # operators (SPEC §15)
    FORBIDDEN = "forbidden"
    REASON_REQUIRED = "reason_required"
    REAUTHENTICATION_REQUIRED = "reauthentication_required"
    LAST_ADMIN = "last_admin"
    # accounts from elsewhere: upstream identity providers (SPEC §16)
    IDP_NOT_FOUND = "idp_not_found"
    IDP_EXISTS = "idp_exists"
    IDP_CHANGED = "idp_changed"
    IDP_UNAVAILABLE = "idp_unavailable"
    FEDERATION_STATE_INVALID = "federation_state_invalid"
    FEDERATION_OTHER_BROWSER = "federation_other_browser"
    FEDERATION_TOKEN_INVALID = "federation_token_invalid"
    FEDERATION_DENIED = "federation_denied"
    FEDERATION_SIGNUP_CLOSED = "federation_signup_closed"
    FEDERATION_TICKET_INVALID = "federation_ticket_invalid"
    # the people a service already has (SPEC §17)
    DEVICE_EXISTS = "device_exists"
    INVALID_EMAIL_CODE = "invalid_email_code"
    IDENTITY_LINKED_ELSEWHERE = "identity_linked_elsewhere"
    IDENTITY_NOT_FOUND = "identity_not_found"
    LAST_WAY_IN = "last_way_in"


ERROR_KEYS = "error."  # catalogue keys of details: error.<code>, error.<code>.<variant>


class ApiError(Exception):
    """Base of every domain error: subclasses set `status`, `code` and a default `detail`.

    `detail` is English; `detail_key` (with `detail_params`) is its catalogue entry, which the
    handler renders in the request's language. A fixed English text that the catalogue holds
    under error.* finds its key by itself; a text it lacks stays English in every language."""

    status: int = 400
    code: ErrorCode = ErrorCode.BAD_REQUEST
    detail: str = "The request could not be processed."
    headers: dict[str, str] = {}

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 detail_key: str | None = None, detail_params: dict[str, Any] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail
        if headers:
            self.headers = {**self.headers, **headers}
        self.detail_key = detail_key or i18n.key_of(self.detail, prefix=ERROR_KEYS)
        self.detail_params = detail_params or {}
        self.extra = extra

    def detail_in(self, locale: str) -> str:
        """The detail in `locale`; English exactly as raised."""
        if locale == i18n.DEFAULT or not self.detail_key:
            return self.detail
        return i18n.text(self.detail_key, locale, **self.detail_params)

    def body(self, locale: str = i18n.DEFAULT) -> dict[str, Any]:
        return {"type": "about:blank", "title": HTTPStatus(self.status).phrase,
                "status": self.status, "detail": self.detail_in(locale), "code": self.code.value,
                **self.extra}


class BadRequest(ApiError):
    status, code = 400, ErrorCode.BAD_REQUEST


class InvalidJson(ApiError):
    status, code, detail = 400, ErrorCode.INVALID_JSON, "The body must be a JSON object."


class NotJsonMediaType(ApiError):
    status, code = 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE
    detail = "The body must be JSON, sent as Content-Type: application/json."


class MissingFields(ApiError):
    status, code, detail = 400, ErrorCode.MISSING_FIELDS, "Required fields are missing."

    def __init__(self, fields: list[str], detail: str | None = None) -> None:
        if detail:
            super().__init__(detail, fields=fields)
            return
        listed = ", ".join(fields)
        super().__init__(f"Missing required fields: {listed}.", detail_key="error.missing_fields.list",
                         detail_params={"fields": listed}, fields=fields)


class FieldKind(str, Enum):
    """The `kind` member of a 400 invalid_field: which rule the value broke, for clients to
    choose their own words without reading the English detail."""

    EMPTY = "empty"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    TOO_COMMON = "too_common"
    INVALID_FORMAT = "invalid_format"
    INVALID_CHARACTERS = "invalid_characters"
    OUT_OF_RANGE = "out_of_range"
    INVALID_VALUE = "invalid_value"


FIELD_RULE = "rule"  # the context member of a field_refusal: its catalogue key under error.invalid_field.


def field_refusal(kind: FieldKind, rule: str, message: str, **context: Any) -> PydanticCustomError:
    """What our own field validators raise: pydantic reports `kind` as the error's type and `rule`
    in its context, so the 400 names the kind without anyone reading `message` (a template that
    `context` fills in)."""
    return PydanticCustomError(kind.value, message, {**context, FIELD_RULE: rule})


class InvalidField(ApiError):
    status, code = 400, ErrorCode.INVALID_FIELD

    def __init__(self, field: str, detail: str, *, kind: FieldKind = FieldKind.INVALID_VALUE,
                 detail_key: str | None = None, detail_params: dict[str, Any] | None = None) -> None:
        super().__init__(detail, detail_key=detail_key, detail_params={"field": field, **(detail_params or {})},
                         field=field, kind=kind.value)


class Unauthorized(ApiError):
    """401s carry the Bearer challenge header of RFC 6750."""

    status, code = 401, ErrorCode.INVALID_TOKEN
    detail = "The access token is missing or invalid."
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status, code, detail = 404, ErrorCode.NOT_FOUND, "Not found."


class Conflict(ApiError):
    status = 409


class Gone(ApiError):
    status = 410


class TooManyRequests(ApiError):
    status, code = 429, ErrorCode.TOO_MANY_ATTEMPTS

    def __init__(self, detail: str, *, retry_after: int, code: ErrorCode | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)
        if code:
            self.code = code


class ServiceUnavailable(ApiError):
    status, code, detail = 503, ErrorCode.SERVICE_UNAVAILABLE, "The service is not ready."


class StorageUnavailable(ServiceUnavailable):
    """DynamoDB is down, slow or throttling: the client should retry after `retry_after` seconds."""

    detail = "The database is not answering; try again shortly."
    RETRY_AFTER = 5

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER)}, retry_after=self.RETRY_AFTER)


def request_locale() -> str:
    """The language of problem details: the request's Accept-Language, English outside a request."""
    return i18n.negotiate(request.headers.get("Accept-Language")) if has_request_context() else i18n.DEFAULT

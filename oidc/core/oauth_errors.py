"""The back-channel endpoints' refusals in OAuth's own format (RFC 6749 §5.2, SPEC §14): whatever refuses a
request at /oidc/token, /oidc/revoke or /oidc/par — Authlib, the standard's checks, or citylogin's session
and storage layers underneath (an account locked, a session ended, a database that is down) — answers
`{"error", "error_description"}` as JSON, never problem+json and never a redirect."""
from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from botocore.exceptions import BotoCoreError, ClientError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from common.errors import ApiError, ErrorCode, StorageUnavailable
from common.log_bursts import BurstLog
from common.crypto.hash_slots import HashingBusy
from common.database import dynamo
from oidc.core import refusals

log = logging.getLogger("oidc.oauth_errors")  # the name its log lines have always had
_outage_log = BurstLog(log)

TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"
INVALID_GRANT, INVALID_REQUEST = "invalid_grant", "invalid_request"
# RFC 9449 §7.1, §8: DPoP's own errors at the token endpoint, with the headers that go with them.
DPOP_ERRORS = frozenset({ErrorCode.INVALID_DPOP_PROOF.value, ErrorCode.USE_DPOP_NONCE.value})
_PASSED_HEADERS = ("retry-after", "dpop-nonce")
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_NOT_DESCRIBABLE = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')


def json_error(error: OAuth2Error) -> Response:
    """An RFC 6749 §5.2 error as JSON, never a redirect (the back-channel endpoints)."""
    status = error.status_code if error.status_code and error.status_code != 302 else 400
    retry_after = getattr(error, "retry_after", None)  # oidc.core.request_limits.TooManyRequests: 429
    challenge = getattr(error, "challenge", None)  # a Bearer one (RFC 6750 §3): oidc.registration.endpoint's 401s
    headers = {**({"Retry-After": str(retry_after)} if retry_after is not None else {}),
               **({"WWW-Authenticate": challenge} if challenge else {})}
    return _answer(status, error.error, error.description, headers)


def refused_in_json(error: OAuth2Error) -> Response:
    """A back-channel endpoint's refusal (token, PAR, device authorization, revocation) as JSON, never a
    redirect, logged and counted (oidc.core.refusals)."""
    refusals.refused(error)
    return json_error(error)


def _answer(status: int, error: str, description: str | None, headers: dict[str, str] | None = None) -> Response:
    body = {"error": error, **({"error_description": describable(description)} if description else {})}
    sent = {"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
    if status == 401:
        sent.setdefault("WWW-Authenticate", 'Basic realm="citylogin"')
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=sent)


def describable(text: str) -> str:
    """`text` as an error_description may carry it (RFC 6749 §5.2's characters, at most 400)."""
    return _NOT_DESCRIBABLE.sub("", text.replace('"', "'").replace("\\", "/"))[:400]


def api_error(error: ApiError) -> Response:
    """A refusal of citylogin's own layers, as OAuth says it: a storage or capacity problem is
    temporarily_unavailable at its own status (503, 429, with Retry-After); a DPoP refusal is DPoP's error;
    a malformed input invalid_request; anything that says the grant's person or session can give no more
    tokens (a session ended, an account locked or deleted: RFC 6749 §5.2) invalid_grant."""
    headers = {name: value for name, value in error.headers.items() if name.lower() in _PASSED_HEADERS}
    if error.status >= 500 or error.status == 429:
        return _answer(error.status, TEMPORARILY_UNAVAILABLE, error.detail, headers)
    if error.code.value in DPOP_ERRORS:
        return _answer(400, error.code.value, error.detail, headers)
    if error.status == 400:
        return _answer(400, INVALID_REQUEST, error.detail)
    return _answer(400, INVALID_GRANT, error.detail)


def _as_oauth_error(response: Response) -> OAuth2Error:
    body = json.loads(response.get_data(as_text=True))
    said = OAuth2Error(description=body.get("error_description"), status_code=response.status_code)
    said.error = body["error"]
    return said


def in_oauth_format(view: Callable[..., Response]) -> Callable[..., Response]:
    """A back-channel endpoint's view whose every refusal is RFC 6749 §5.2 JSON: its own OAuth2Errors are
    already; citylogin's ApiErrors, werkzeug's HTTP errors (a body too large) and a DynamoDB outage are
    translated. Anything else is a bug, left to the 500 handler that logs it."""
    @functools.wraps(view)
    def answered(*args: Any, **kwargs: Any) -> Response:
        try:
            return view(*args, **kwargs)
        except OAuth2Error as error:
            refusals.refused(error)
            return json_error(error)
        except ApiError as error:
            response = api_error(error)
            refusals.refused(_as_oauth_error(response))  # logged and counted as the endpoint's own refusals
            return response
        except HashingBusy:
            return _answer(503, TEMPORARILY_UNAVAILABLE, "Busy: try again.",
                           {"Retry-After": str(HashingBusy.RETRY_AFTER)})
        except HTTPException as error:
            status = error.code if error.code and 400 <= error.code < 500 else 400
            return _answer(status, INVALID_REQUEST, error.description)
        except (BotoCoreError, ClientError) as error:
            cause = dynamo.outage_cause(error)
            if cause is None:
                raise
            _outage_log.log(logging.WARNING, "DynamoDB unavailable (%s: %s): answering 503 temporarily_unavailable",
                            cause, type(error).__name__)
            return api_error(StorageUnavailable())
    return answered

"""Why a provider's round trip was refused (SPEC §16): the errors, each with its code for the person's page and a
finer reason for the operator, and the one log line and count each refusal leaves.

The log line and the metric carry the reason (a constant of this package), the code and the provider's name,
never what the request or the provider sent: no code, state, token, nonce or e-mail. The provider label is the
name of a configured provider or "-", so a URL someone made up never adds a label value."""
from __future__ import annotations

import logging
import re
from typing import TypeVar

from common.errors import ApiError, ErrorCode, Forbidden, ServiceUnavailable, Unauthorized
from common.web import metrics

log = logging.getLogger("citylogin.federation.refusals")

REASON = re.compile(r"[a-z0-9_]{1,64}")
UNKNOWN_PROVIDER = "-"


class IdpUnavailable(ServiceUnavailable):
    code = ErrorCode.IDP_UNAVAILABLE
    detail = ("The sign-in provider could not be reached or gave an answer that could not be used; try again "
              "later, or sign in with your password.")


class StateInvalid(ApiError):
    status, code = 400, ErrorCode.FEDERATION_STATE_INVALID
    detail = "This sign-in answer is unknown, expired or was already used; start again."


class OtherBrowser(Forbidden):
    code = ErrorCode.FEDERATION_OTHER_BROWSER
    detail = "This sign-in was started in another browser; start again in this one."


class TokenInvalid(Unauthorized):
    code = ErrorCode.FEDERATION_TOKEN_INVALID
    detail = "The provider's answer failed a check and was refused."


class Denied(Forbidden):
    code = ErrorCode.FEDERATION_DENIED
    detail = "The sign-in was cancelled at the provider."


E = TypeVar("E", bound=ApiError)


def because(error: E, reason: str) -> E:
    """`error` with the finer reason its log line and count give (a constant: it is a metric label)."""
    error.reason = reason  # type: ignore[attr-defined]
    return error


def reason_of(error: ApiError) -> str:
    reason = getattr(error, "reason", None)
    return reason if isinstance(reason, str) and REASON.fullmatch(reason) else error.code.value


def record(error: ApiError, *, provider: str | None) -> None:
    """One log line and one count for a refused round trip with `provider` (a configured provider's name)."""
    shown = provider or UNKNOWN_PROVIDER
    reason = reason_of(error)
    metrics.FEDERATION_REFUSALS.labels(shown, reason).inc()
    log.info("Sign-in with a provider refused: provider=%s code=%s reason=%s", shown, error.code.value, reason,
             extra={"federation_refusal": {"provider": shown, "code": error.code.value, "reason": reason}})

"""The standard's refusals of any request's parameters before Authlib reads it (SPEC §14; RFC 6749 §3.1,
§3.2 and Appendix A), each a named step over the parameters as sent: every value of every name (a MultiDict),
so that a repeated one cannot hide behind a `to_dict()` that keeps the first; and the back-channel endpoints'
own (token, PAR, device authorization, revocation): one client authentication method (RFC 6749 §2.3) whose
Basic credentials decode. No input is a 500."""
from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, OAuth2Error, OAuth2Request
from werkzeug.datastructures import MultiDict

from oidc.core import refusals

Params = MultiDict[str, str]

REQUEST_OBJECT_LENGTH = 16384  # characters of a compact request object (a GET's URL carries it: the head is 64 KiB)
MAX_PARAMETERS = 40
MAX_NAME_LENGTH = 64
MAX_VALUE_LENGTH = 4096  # room for an id_token_hint, a client_assertion, a refresh token
MAX_LENGTHS = {"request": REQUEST_OBJECT_LENGTH}  # a request object (RFC 9101) may be longer
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 (NUL, CR, LF, tab), DEL, C1
# RFC 6749 Appendix A: the protocol's values are printable ASCII (VSCHAR, NQCHAR, NQSCHAR)...
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
GRANT_TYPE = re.compile(r"[A-Za-z0-9_.\-:/]+")  # ... and grant_type has a grammar of its own (A.5)
# The values whose grammar is printable ASCII; the others (login_hint, ui_locales, ...) are free
# text, held to no control characters and the length only.
PROTOCOL_PARAMETERS = ("request", "client_id", "response_type", "scope", "state", "nonce", "prompt", "max_age",
                       "response_mode", "code_challenge", "code_challenge_method", "request_uri", "dpop_jkt",
                       "grant_type", "code", "code_verifier", "refresh_token", "token", "token_type_hint",
                       "client_assertion_type", "client_assertion")

C = TypeVar("C", bound=Callable[..., None])


def refused_as(reason: str) -> Callable[[C], C]:
    """A step whose refusals are logged and counted with this reason (oidc.core.refusals)."""
    def decorate(check: C) -> C:
        @functools.wraps(check)
        def checked(*args: Any, **kwargs: Any) -> None:
            try:
                check(*args, **kwargs)
            except OAuth2Error as error:
                if refusals.reason_of(error) is None:
                    refusals.because(error, reason)
                raise
        return cast(C, checked)
    return decorate


# --- the parameters as sent ---------------------------------------------------------------------

@refused_as("too_many_parameters")
def check_parameter_count(params: Params) -> None:
    if len(params) > MAX_PARAMETERS:
        raise InvalidRequestError(f"At most {MAX_PARAMETERS} parameters.")


@refused_as("parameter_repeated")
def check_single_values(params: Params, names: tuple[str, ...] | None = None) -> None:
    """RFC 6749 §3.1, §3.2: a parameter is sent at most once (of `names`; all, by default)."""
    for name in names if names is not None else params.keys():
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"The parameter {shown(name)} is repeated: send it once.")


@refused_as("parameter_malformed")
def check_characters(params: Params, names: tuple[str, ...] | None = None) -> None:
    """No name or value with a control character (NUL, CR, LF, DEL, ...) or over the length; the
    protocol's values in printable ASCII (RFC 6749 Appendix A)."""
    for name in names if names is not None else params.keys():
        if len(name) > MAX_NAME_LENGTH or CONTROL_CHARACTERS.search(name):
            raise InvalidRequestError("A parameter name is too long or holds a control character.")
        for value in params.getlist(name):
            if len(value) > MAX_LENGTHS.get(name, MAX_VALUE_LENGTH) or CONTROL_CHARACTERS.search(value):
                raise InvalidRequestError(f"The parameter {shown(name)} is too long or holds a control character.")
            if name in PROTOCOL_PARAMETERS and not PRINTABLE_ASCII.fullmatch(value):
                raise InvalidRequestError(f"The parameter {shown(name)} must be printable ASCII (RFC 6749 "
                                          "Appendix A).")


def shown(name: str) -> str:
    """A parameter's name as an error_description may carry it."""
    return name if re.fullmatch(r"[a-z_]{1,40}", name) else "(a parameter)"


# --- the back-channel endpoints (token, PAR, revocation) ---------------------------------------

CLIENT_SECRET, CLIENT_ASSERTION = "client_secret", "client_assertion"


def check_backchannel_request(params: Params, *, authorization: str | None) -> None:
    """A token, PAR or revocation request before Authlib reads it: every parameter once, well formed,
    one grant_type of its grammar, and one client authentication method (RFC 6749 §2.3: "MUST NOT use
    more than one authentication method in each request") whose Basic credentials decode."""
    check_parameter_count(params)
    check_single_values(params)
    check_characters(params)
    grant_type = params.get("grant_type")
    if grant_type is not None and not GRANT_TYPE.fullmatch(grant_type):
        raise refusals.because(InvalidRequestError("grant_type is not a grant type (RFC 6749 Appendix A.5)."),
                               "grant_type_malformed")
    check_one_client_authentication(params, authorization=authorization)


def check_backchannel(request: OAuth2Request) -> None:
    """check_backchannel_request over Authlib's request: its parameters (query and body, as Authlib reads
    them) and its Authorization header."""
    check_backchannel_request(request.payload.data, authorization=request.headers.get("Authorization"))


@refused_as("client_authentication_repeated")
def check_one_client_authentication(params: Mapping[str, str], *, authorization: str | None) -> None:
    basic = _basic_credentials(authorization)
    methods = [basic is not None, CLIENT_SECRET in params, CLIENT_ASSERTION in params]
    if sum(methods) > 1:
        raise InvalidRequestError("Use one client authentication method per request (RFC 6749 section 2.3): HTTP "
                                  "Basic, client_secret in the body, or a client_assertion.")


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The Basic credentials of an Authorization header, None for none or another scheme; a Basic
    header that does not decode to "id:secret" in UTF-8 is invalid_client (RFC 6749 §2.3.1)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip().encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error):
        decoded = ""
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or CONTROL_CHARACTERS.search(decoded) or len(decoded) > MAX_VALUE_LENGTH:
        raise _unreadable_basic()
    return client_id, secret


def _unreadable_basic() -> OAuth2Error:
    return refusals.because(InvalidClientError(status_code=401, description="The Basic credentials do not decode to "
                                               "client_id:secret."), "basic_credentials_malformed")

"""The standard's refusals that come before Authlib reads a request (SPEC §14), each a named step over
the parameters as sent: every value of every name (a MultiDict), so that a repeated one cannot hide
behind a `to_dict()` that keeps the first. What passes is what Authlib may safely echo into an
`error_description` (RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E). No input is a 500."""
from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidRequestError, OAuth2Error
from werkzeug.datastructures import MultiDict

from oidc.core import refusals
from oidc.authorization.request_object_checks import MAX_LENGTH as REQUEST_OBJECT_LENGTH
from oidc.core.redirects import parse_redirect_uri

Params = MultiDict[str, str]

MAX_PARAMETERS = 40
MAX_NAME_LENGTH = 64
MAX_VALUE_LENGTH = 4096  # room for an id_token_hint, a client_assertion, a refresh token
MAX_LENGTHS = {"request": REQUEST_OBJECT_LENGTH}  # a request object (RFC 9101) may be longer
# What one authorization request may keep while the person signs in (10 min) or a pushed one (60 s):
# room for what real apps send together (a state of a few hundred bytes to 4 KB when an app packs its
# own data in it, a nonce, a login_hint, ui_locales, a claims request, a long redirect_uri, PKCE),
# where the count and lengths above alone would let one request keep 40 × 4 KB.
MAX_KEPT_SIZE = 8192
CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0 (NUL, CR, LF, tab), DEL, C1
# RFC 6749 Appendix A: the protocol's values are printable ASCII (VSCHAR, NQCHAR, NQSCHAR)...
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
# ... some with a grammar of their own (A.3 response_type, A.5 grant_type, RFC 7636 §4.2).
RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*")
GRANT_TYPE = re.compile(r"[A-Za-z0-9_.\-:/]+")
SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")  # A.4: NQCHAR tokens
# The values whose grammar is printable ASCII; the others (login_hint, ui_locales, ...) are free
# text, held to no control characters and the length only.
PROTOCOL_PARAMETERS = ("request", "client_id", "response_type", "scope", "state", "nonce", "prompt", "max_age",
                       "response_mode", "code_challenge", "code_challenge_method", "request_uri", "dpop_jkt",
                       "grant_type", "code", "code_verifier", "refresh_token", "token", "token_type_hint",
                       "client_assertion_type", "client_assertion")
# What this provider answers (discovery: response_modes_supported, prompt_values_supported).
RESPONSE_MODES = frozenset({"query", "form_post"})  # OAuth 2.0 Form Post Response Mode:
                                                    # oidc.authorization.response_mode
PROMPTS = frozenset({"none", "login", "consent"})


C = TypeVar("C", bound=Callable[..., None])


def _refused_as(reason: str) -> Callable[[C], C]:
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

@_refused_as("too_many_parameters")
def check_parameter_count(params: Params) -> None:
    if len(params) > MAX_PARAMETERS:
        raise InvalidRequestError(f"At most {MAX_PARAMETERS} parameters.")


@_refused_as("parameter_repeated")
def check_single_values(params: Params, names: tuple[str, ...] | None = None) -> None:
    """RFC 6749 §3.1, §3.2: a parameter is sent at most once (of `names`; all, by default)."""
    for name in names if names is not None else params.keys():
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"The parameter {_shown(name)} is repeated: send it once.")


@_refused_as("parameter_malformed")
def check_characters(params: Params, names: tuple[str, ...] | None = None) -> None:
    """No name or value with a control character (NUL, CR, LF, DEL, ...) or over the length; the
    protocol's values in printable ASCII (RFC 6749 Appendix A)."""
    for name in names if names is not None else params.keys():
        if len(name) > MAX_NAME_LENGTH or CONTROL_CHARACTERS.search(name):
            raise InvalidRequestError("A parameter name is too long or holds a control character.")
        for value in params.getlist(name):
            if len(value) > MAX_LENGTHS.get(name, MAX_VALUE_LENGTH) or CONTROL_CHARACTERS.search(value):
                raise InvalidRequestError(f"The parameter {_shown(name)} is too long or holds a control character.")
            if name in PROTOCOL_PARAMETERS and not PRINTABLE_ASCII.fullmatch(value):
                raise InvalidRequestError(f"The parameter {_shown(name)} must be printable ASCII (RFC 6749 "
                                          "Appendix A).")


def _shown(name: str) -> str:
    """A parameter's name as an error_description may carry it."""
    return name if re.fullmatch(r"[a-z_]{1,40}", name) else "(a parameter)"


# --- the authorization request (GET|POST /oidc/authorize, POST /oidc/par) ----------------------

TARGET_PARAMETERS = ("client_id", "redirect_uri", "request_uri")


def check_target(params: Params) -> None:
    """What decides where an error may go (RFC 6749 §4.1.2.1): `client_id`, `redirect_uri` and
    `request_uri` once each, and well formed. Any refusal here is an error page, never a redirect."""
    check_parameter_count(params)
    check_single_values(params, TARGET_PARAMETERS)
    check_characters(params, tuple(name for name in TARGET_PARAMETERS if name in params))
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is not None and isinstance(parse_redirect_uri(redirect_uri), str):
        raise refusals.because(InvalidRequestError("redirect_uri is not a URI that any app registered."),
                               "redirect_uri_malformed")


def check_authorization_request(params: Params) -> None:
    """The request's other parameters (OpenID Connect Core §3.1.2.1, §6; RFC 6749 §3.1), in order;
    an OAuth2Error the caller sends to the trusted redirect URI."""
    check_single_values(params)
    check_characters(params)
    check_request_object(params)
    check_response_type_syntax(params)
    check_scope_syntax(params)
    check_response_mode(params)
    check_prompt(params)
    check_max_age(params)
    check_kept_size(params)


@_refused_as("request_object_and_uri")
def check_request_object(params: Params) -> None:
    """RFC 9101 §5: a request object by value (`request`) or by reference (`request_uri`), not both, and
    each once (oidc.authorization.request_objects reads it)."""
    check_single_values(params, ("request", "request_uri"))
    if "request" in params and "request_uri" in params:
        raise InvalidRequestError("Send request or request_uri, not both (RFC 9101 section 5).")


@_refused_as("response_type_malformed")
def check_response_type_syntax(params: Params) -> None:
    value = params.get("response_type")
    if value is not None and not RESPONSE_TYPE.fullmatch(value):
        raise InvalidRequestError("response_type is not a response type (RFC 6749 Appendix A.3).")


@_refused_as("scope_malformed")
def check_scope_syntax(params: Params) -> None:
    value = params.get("scope")
    if value and not SCOPE.fullmatch(value):
        raise InvalidRequestError("scope is not a list of scope tokens (RFC 6749 Appendix A.4).")


@_refused_as("response_mode_unsupported")
def check_response_mode(params: Params) -> None:
    """OAuth 2.0 Multiple Response Types §2.1: `query` (the default) and `form_post` are supported; a
    form_post response goes to an http or https redirect URI only (a native app's scheme takes no POST)."""
    value = params.get("response_mode")
    if value and value not in RESPONSE_MODES:
        raise InvalidRequestError("response_mode: the supported values are query and form_post.")
    if value == "form_post" and urlsplit(params.get("redirect_uri") or "").scheme not in ("http", "https"):
        raise InvalidRequestError("response_mode=form_post needs an http or https redirect_uri.")


@_refused_as("prompt_unsupported")
def check_prompt(params: Params) -> None:
    """OpenID Connect Core §3.1.2.1: `none`, `login`, `consent` are supported, and `none` stands alone."""
    value = params.get("prompt")
    if not value:
        return
    prompts = value.split(" ")
    if not set(prompts) <= PROMPTS:
        raise InvalidRequestError("prompt: the supported values are none, login and consent.")
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with another value.")


@_refused_as("max_age_malformed")
def check_max_age(params: Params) -> None:
    value = params.get("max_age")
    if value and not (value.isascii() and value.isdigit() and len(value) < 10):
        raise InvalidRequestError("max_age is a whole number of seconds.")


@_refused_as("request_too_large")
def check_kept_size(params: Params) -> None:
    """What one request may keep (SPEC §14): its parameters, less the client's credentials (never kept),
    within MAX_KEPT_SIZE bytes of UTF-8 in all."""
    size = sum(len(name.encode()) + len(value.encode()) for name, value in params.items(multi=True)
               if name not in CLIENT_CREDENTIALS)
    if size > MAX_KEPT_SIZE:
        raise InvalidRequestError(f"The request's parameters are over {MAX_KEPT_SIZE} bytes in all.")


def echoable_state(params: Params) -> str | None:
    """The `state` an error redirect carries back (RFC 6749 §4.1.2.1): the one sent, if it was sent once
    and is printable ASCII within the length; else none rather than a guess."""
    values = params.getlist("state")
    if len(values) != 1 or len(values[0]) > MAX_VALUE_LENGTH or not PRINTABLE_ASCII.fullmatch(values[0]):
        return None
    return values[0] or None


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


@_refused_as("client_authentication_repeated")
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

"""The standard's refusals that come before Authlib reads a request (SPEC §14), each a named step over
the parameters as sent: every value of every name (a MultiDict), so that a repeated one cannot hide
behind a `to_dict()` that keeps the first. What passes is what Authlib may safely echo into an
`error_description` (RFC 6749 §4.1.2.1: %x20-21 / %x23-5B / %x5D-7E). No input is a 500."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidRequestError

from oidc.core import refusals
from oidc.core.parameter_checks import (MAX_VALUE_LENGTH, PRINTABLE_ASCII, Params, check_characters,
                                        check_parameter_count, check_single_values, refused_as)
from oidc.core.redirects import parse_redirect_uri

# What one authorization request may keep while the person signs in (10 min) or a pushed one (60 s):
# room for what real apps send together (a state of a few hundred bytes to 4 KB when an app packs its
# own data in it, a nonce, a login_hint, ui_locales, a claims request, a long redirect_uri, PKCE),
# where the count and lengths above alone would let one request keep 40 × 4 KB.
MAX_KEPT_SIZE = 8192
CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")
# Some values have a grammar of their own (RFC 6749 Appendix A.3 response_type, A.4 scope).
RESPONSE_TYPE = re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*")
SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")  # A.4: NQCHAR tokens
# What this provider answers (discovery: response_modes_supported, prompt_values_supported).
RESPONSE_MODES = frozenset({"query", "form_post"})  # Form Post Response Mode: oidc.authorization.response_mode
PROMPTS = frozenset({"none", "login", "consent"})





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


@refused_as("request_object_and_uri")
def check_request_object(params: Params) -> None:
    """RFC 9101 §5: a request object by value (`request`) or by reference (`request_uri`), not both, and
    each once (oidc.authorization.request_objects reads it)."""
    check_single_values(params, ("request", "request_uri"))
    if "request" in params and "request_uri" in params:
        raise InvalidRequestError("Send request or request_uri, not both (RFC 9101 section 5).")


@refused_as("response_type_malformed")
def check_response_type_syntax(params: Params) -> None:
    value = params.get("response_type")
    if value is not None and not RESPONSE_TYPE.fullmatch(value):
        raise InvalidRequestError("response_type is not a response type (RFC 6749 Appendix A.3).")


@refused_as("scope_malformed")
def check_scope_syntax(params: Params) -> None:
    value = params.get("scope")
    if value and not SCOPE.fullmatch(value):
        raise InvalidRequestError("scope is not a list of scope tokens (RFC 6749 Appendix A.4).")


@refused_as("response_mode_unsupported")
def check_response_mode(params: Params) -> None:
    """OAuth 2.0 Multiple Response Types §2.1: `query` (the default) and `form_post` are supported; a
    form_post response goes to an http or https redirect URI only (a native app's scheme takes no POST)."""
    value = params.get("response_mode")
    if value and value not in RESPONSE_MODES:
        raise InvalidRequestError("response_mode: the supported values are query and form_post.")
    if value == "form_post" and urlsplit(params.get("redirect_uri") or "").scheme not in ("http", "https"):
        raise InvalidRequestError("response_mode=form_post needs an http or https redirect_uri.")


@refused_as("prompt_unsupported")
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


@refused_as("max_age_malformed")
def check_max_age(params: Params) -> None:
    value = params.get("max_age")
    if value and not (value.isascii() and value.isdigit() and len(value) < 10):
        raise InvalidRequestError("max_age is a whole number of seconds.")


@refused_as("request_too_large")
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



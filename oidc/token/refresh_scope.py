"""The scope of a refresh's answer (RFC 6749 §6): any part of the scope the grant was originally given,
and all of it when the request names none. It narrows that answer only: the grant keeps the scope it
was given (its refresh tokens carry that one, oidc.token.refresh_tokens), so a later refresh may ask for all of it
again. Scopes compare as sets of scope tokens (§3.3), never as strings."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidScopeError

from oidc.core import refusals


def scope_tokens(scope: str | None) -> tuple[str, ...]:
    """The scope tokens of a `scope` value (RFC 6749 §3.3: delimited by spaces), in order, each once;
    spaces around them or between them delimit nothing more."""
    return tuple(dict.fromkeys(token for token in (scope or "").split(" ") if token))


def refreshed_scope(*, granted: str, asked: str | None) -> str:
    """The answer's scope: the grant's tokens that `asked` names, in the grant's order, or all of them when
    it names none (RFC 6749 §6: "if omitted is treated as equal to the scope originally granted").
    invalid_scope if it names one the grant was not given (unknown ones included: nothing to ignore here,
    unlike at /oidc/authorize)."""
    given, wanted = scope_tokens(granted), frozenset(scope_tokens(asked))
    if not wanted:
        return " ".join(given)
    if not wanted <= frozenset(given):
        raise refusals.because(InvalidScopeError("The scope asks for more than the grant was given (RFC 6749 "
                                                 "section 6): ask for part of it, or leave scope out for all "
                                                 "of it."), "scope_not_granted")
    return " ".join(token for token in given if token in wanted)

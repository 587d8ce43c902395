"""The refresh token grant (RFC 6749 §6) with rotation (OAuth 2.1 §4.3.1; oidc.token.refresh_rotation): each use
gives a new refresh token and retires the one used, in one conditional write after the client and the scope were
checked; a FAPI 2.0 app's token is kept (FAPI 2.0 SP §5.3.2.1). The scope of the answer is any part of the scope the
grant was originally given, and all of it when the request names none. It narrows that answer only: the grant keeps
the scope it was given (its refresh tokens carry that one, oidc.token.refresh_tokens), so a later refresh may ask for
all of it again. Scopes compare as sets of scope tokens (§3.3), never as strings."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError, grants

from oidc.clients import authentication
from oidc.core import fapi2, refusals
from oidc.core.models import AppRefresh, SignedIn
from oidc.token import refresh_rotation, tokens
from oidc.token import refresh_tokens as refresh


class RefreshGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1): each use gives a new refresh token and retires
    the one used, in one conditional write after the client and the scope were checked. A `scope`
    narrows that answer alone (refreshed_scope)."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(authentication.TOKEN_ENDPOINT_AUTH_METHODS)
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> AppRefresh | None:
        return refresh.presented_for_rotation(self.server.ctx, refresh_token)

    def _validate_token_scope(self, token: AppRefresh) -> None:
        # Authlib's step for the request's `scope`, before anything is written: citylogin's rule
        # (refreshed_scope), against the scope the grant was given, and the answer's scope it decides.
        self.request.refreshed_scope = refreshed_scope(granted=token.get_scope(), asked=self.request.payload.scope)

    def issue_token(self, user: SignedIn, refresh_token: AppRefresh) -> dict[str, Any]:
        """The answer's tokens, of its scope; its refresh token (the grant has them with offline_access, or
        as a public client's) carries the grant's scope whatever this answer's is (oidc.token.tokens)."""
        return tokens.refreshed_tokens(self.server.ctx, client=self.request.client, user=user,
                                       scope=self.request.refreshed_scope)

    def authenticate_user(self, refresh_token: AppRefresh) -> SignedIn:
        """The person behind the refresh's tokens: the grant rotated to its next refresh token, or, for a
        FAPI 2.0 app (no rotation), the same one kept (oidc.token.refresh_rotation)."""
        ctx, oidc = self.server.ctx, self.request.client.app.oidc()
        if not oidc.rotates_refresh_tokens():
            return refresh_rotation.kept(ctx, refresh_token, dpop_required=oidc.dpop_required(),
                                         dpop_algorithms=fapi2.DPOP_ALGORITHMS if oidc.fapi2 else None)
        return refresh_rotation.rotate(ctx, refresh_token, dpop_required=oidc.dpop_required())

    def revoke_old_credential(self, refresh_token: AppRefresh) -> None:
        pass  # retired by the rotation's own write (authenticate_user)


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

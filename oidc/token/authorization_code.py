"""The authorization code grant (RFC 6749 §4.1, with PKCE, oidc.token.pkce, and OpenID Connect Core §3.1): the code
sealed at the authorization response (oidc.token.codes: it is its own record, nothing is written), and at the token
endpoint, in Authlib's order, the client and its authentication, the code (only read), the redirect_uri, the PKCE
verifier, then the DPoP key (RFC 9449 §10) and the person. The code is spent only then, by the one transaction that
records the grant (oidc.token.redemption, SPEC §14): a failed attempt, by anyone, leaves it to its client. The
tokens (oidc.token.tokens), the ID token among them (IdToken), are signed once that transaction committed."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Request, grants
from authlib.oidc.core import OpenIDCode

from common.runtime.context import AppContext
from oidc.clients import authentication
from oidc.core import claims as user_claims
from oidc.core import dpop, fapi2
from oidc.core.kept_request import StoredRequest
from oidc.core.models import Client, Code, SignedIn
from oidc.core.store import CodeNotSpent
from oidc.token import codes, redemption, tokens
from oidc.token import refresh_tokens as refresh


class CodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1.3 in Authlib's order: the client and its authentication, the code (only read), the
    redirect_uri, the PKCE verifier; then the DPoP key and the live session (authenticate_user). The code
    is spent only then, by the transaction that records the grant (SPEC §14): a failed attempt, by
    anyone, leaves it to its client."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(authentication.TOKEN_ENDPOINT_AUTH_METHODS)

    def generate_authorization_code(self) -> str:
        return sealed_code(self.server.ctx, self.request)  # the code is its own record (oidc.token.codes)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        pass  # sealed in the code itself: nothing is written

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        """The live code issued to `client`, used or not; None for any other (invalid_grant). Nothing is
        read or written: the code is used up once every check has passed, with the grant (SPEC §14,
        save_token)."""
        ctx = self.server.ctx
        found = codes.opened(ctx.refresh_secrets, code, now=ctx.epoch())
        if found is None or found.client_id != client.client_id:
            return None
        return found

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # used up by save_token's transaction: the grant's row and the request's mark (oidc.token.codes)

    def authenticate_user(self, authorization_code: Code) -> SignedIn | None:
        user = live_signed_in(authorization_code, self.request.client)
        if user is not None:
            # The ID token's claims as read when the code was given; a code of an earlier release has
            # none, so they are read now, before the one write that spends the code (a read failing
            # after it would leave the code spent and the app without its tokens).
            person = authorization_code.person
            self.request.person_claims = person if person is not None else user_claims.of_user(
                self.server.ctx, user_uuid=authorization_code.user_uuid, scope=authorization_code.get_scope())
            user = replace(user, person=self.request.person_claims)  # its refresh token carries them
        return user

    def generate_token(self, user: SignedIn | None = None, scope: str | None = None, grant_type: str | None = None,
                       expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
        return {"scope": scope}  # signed once the redemption's transaction committed (save_token)

    def save_token(self, token: dict[str, Any]) -> None:
        """A code that passed every check: record the app's grant on the session and the request's
        redemption mark, which uses the code up, in one transaction with what SPEC §14 says must still
        hold (oidc.token.redemption: the session, the app, the person's consent and sign-out; any failing is
        invalid_grant). A second redemption of a code of its request, on this session or another (a second
        browser finished the same request), is a replay, which the mark refuses and which revokes what the
        first gave (RFC 6749 §4.1.2). The tokens are signed once it committed, on the request's thread: handing
        them to the background pool to sign while the transaction travels saved latency but cost more CPU
        (the handoff) and signed for refused redemptions too."""
        ctx, request = self.server.ctx, self.request
        user: SignedIn = request.user
        code: Code = request.authorization_code
        scope = token.get("scope", "")
        grant = user.grant(client_id=request.client.client_id, scope=scope)
        try:
            redemption.redeem(ctx, code=code, grant=grant, app=request.client.app)
        except CodeNotSpent:
            redemption.replayed(ctx, code)
            raise InvalidGrantError("This code was used before: what it gave is revoked.") from None
        issued, request.signed_id_token = tokens.code_tokens(ctx, request, scope=scope)
        token.update(issued)


def sealed_code(ctx: AppContext, request: OAuth2Request) -> str:
    """The code complete() gives (nothing is written: the code is its own record, oidc.token.codes): bound as
    SPEC §14 says, with the person's ID-token claims as read with the session."""
    pending: StoredRequest = request
    user: SignedIn = request.user
    data, scope = request.payload.data, request.scope or ""
    code = Code(client_id=request.client.client_id, redirect_uri=data["redirect_uri"], scope=scope,
                code_challenge=data.get("code_challenge") or "",  # "": asked for without PKCE
                code_challenge_method=data.get("code_challenge_method") or "",
                user_uuid=user.user_uuid, session_id=user.session_id, device_id=user.device_id,
                auth_time=user.auth_time, amr=list(user.amr), nonce=data.get("nonce") or None,
                jkt=data.get("dpop_jkt") or None, person=_claims_of(pending, scope=scope),
                session_expires_epoch=pending.session_expires_epoch, request_digest=pending.digest,
                issued_ms=int(ctx.now().timestamp() * 1000), replacing=pending.replacing)
    return codes.seal(ctx.refresh_secrets, code, now=ctx.epoch())


def live_signed_in(code: Code, client: Client) -> SignedIn | None:
    """The person of a code being redeemed, once the request's DPoP key is the code's (RFC 9449 §10)
    and while the session lives; a refresh token comes with offline_access, and always for a public
    client (it has no other way to stay signed in)."""
    oidc = client.app.oidc()
    key = dpop.request_key(bound_to=code.jkt, required=oidc.dpop_required(),
                           algorithms=fapi2.DPOP_ALGORITHMS if oidc.fapi2 else None)
    # The session's liveness is checked by the write that spends the code (save_token), not read here.
    signed_in = code.signed_in(refresh_generation=tokens.first_refresh_generation(client, scope=code.scope),
                               grant_id=refresh.new_grant_id())
    # The grant, and so its rotating refresh tokens, bound to the key; a kept one (a FAPI 2.0 app's) is
    # bound to the client by its authentication instead (RFC 9449 §5).
    return replace(signed_in, jkt=key, refresh_jkt=key if oidc.rotates_refresh_tokens() else None)


def _claims_of(pending: StoredRequest, *, scope: str) -> dict[str, Any]:
    assert pending.person is not None, "complete() reads the person with the session"
    return user_claims.of_account(pending.person, scope=scope)


class IdToken(OpenIDCode):
    """The ID token (OpenID Connect Core §2) in a code's answer: the one signed once its redemption
    committed (CodeGrant.save_token)."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(require_nonce=False)
        self.ctx = ctx

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # a nonce is the app's to check in the ID token; codes are single-use anyway

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        signed: str | None = getattr(request, "signed_id_token", None)
        return signed if signed is not None else tokens.id_tokens(self.ctx).of_code(token, request)

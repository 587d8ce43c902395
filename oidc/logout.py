"""OpenID Connect RP-Initiated Logout 1.0 (SPEC §14), on Authlib's end-session endpoint: an app sends
the browser to /oidc/logout to end the person's citylogin session. With an `id_token_hint` that
citylogin issued (its signature, its issuer; an expired one counts) the request is proven: the session
it names ends at once, every app of it hears so (Back-Channel Logout, CAEP), and the browser goes to the
app's registered `post_logout_redirect_uri` with its `state`. Without one, the web UI asks the person
first (`/#oidc-logout`) and logs out the session of that tab. An unregistered redirect is never
followed; a hint that does not check out is an error page."""
from __future__ import annotations

from typing import Any

import jwt
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest

from oidc.models import Client


class EndSession(EndSessionEndpoint):
    """Authlib's endpoint with citylogin's keys, clients and sessions (the hooks of oidc.service)."""

    def get_server_jwks(self) -> dict:
        return self.server.ctx.jwt.jwks()

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        # An ID token's header says JWT: never an access token (at+jwt) or a logout token of the same keys.
        try:
            typ = jwt.get_unverified_header(id_token_hint).get("typ")
        except jwt.PyJWTError:
            raise InvalidRequestError("'id_token_hint' is not a JWT.") from None
        if typ != "JWT":
            raise InvalidRequestError("'id_token_hint' is not an ID token.")
        return super()._validate_id_token_hint(id_token_hint)

    def validate_request(self, request: Any) -> EndSessionRequest:
        validated = super().validate_request(request)
        claims = validated.id_token_claims
        if claims is not None and (claims.get("iss") != self.server.issuer or not isinstance(claims.get("sid"), str)
                                   or not isinstance(claims.get("sub"), str)):
            raise InvalidRequestError("'id_token_hint' is not an ID token of this issuer.")
        return validated

    def _is_valid_post_logout_redirect_uri(self, client: Client, post_logout_redirect_uri: str) -> bool:
        return post_logout_redirect_uri in client.app.oidc().post_logout_redirect_uris

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        claims = end_session_request.id_token_claims
        if claims is not None:
            self.server.hooks.end_session(session_id=claims["sid"], user_uuid=claims["sub"])

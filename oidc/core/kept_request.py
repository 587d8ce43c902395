"""An app's authorization request as kept while the person signs in (REQUEST_TTL) and made again for Authlib
(StoredRequest): the record both ends of a code read, the authorization endpoint that fills it in and the token
endpoint whose redemption marks it (oidc.token.redemption)."""
from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload

from accounts.models import AccountRecord

REQUEST_TTL = 600  # seconds the person has to sign in (the pairing token's 10 minutes)


class StoredRequest(OAuth2Request):
    """An authorization request made again from the parameters kept while the person signed in."""

    def __init__(self, uri: str, params: dict[str, str]) -> None:
        super().__init__("GET", uri)
        self.payload = BasicOAuth2Payload(params)
        self._params = params
        # Set by complete() for the code (sealed_code): the person as read with the session, the session's
        # latest end, the request's own item (the code's redemption marks it), and the app's live grant on
        # the session, which the redemption's first try replaces.
        self.person: AccountRecord | None = None
        self.session_expires_epoch = 0
        self.digest = ""
        self.replacing: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self._params

    @property
    def form(self) -> dict[str, str]:
        return {}

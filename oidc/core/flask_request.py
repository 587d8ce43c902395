"""The request being answered as Authlib reads it (its OAuth2Request), at the URL the app sees: every back-channel
endpoint (token, revocation, PAR, device authorization) and the logout endpoint parse it so."""
from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Request
from flask import request as flask_request


def oauth2_request(*, issuer: str) -> OAuth2Request:
    """Flask's request for Authlib at the URL as the app sees it (behind a TLS proxy too): CITYLOGIN_PUBLIC_URL
    (the issuer) and the path."""
    return _FlaskRequest(flask_request, uri=issuer + flask_request.full_path.rstrip("?"))


class _FlaskRequest(FlaskOAuth2Request):
    """Authlib's request over Flask's at the URL given (its https check included): FlaskOAuth2Request's
    own, without first making the URL of the WSGI environment (werkzeug's IRI conversions), which
    citylogin replaces with the one the app sees anyway."""

    def __init__(self, request: Any, *, uri: str) -> None:
        OAuth2Request.__init__(self, method=request.method, uri=uri, headers=request.headers)
        self._request = request
        self.payload = FlaskOAuth2Payload(request)

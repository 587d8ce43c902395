"""PKCE (RFC 7636) at the authorization and token endpoints, as the certified providers require it (SPEC §14): S256
only (RFC 9700 §2.1.1), required of a public client, of an app added with --require-pkce or of every app by the
operator's setting, and enforced as asked, no downgrade either way (RFC 9700 §4.8.2)."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from oidc.core import refusals
from oidc.core.models import Client


class S256Challenge(CodeChallenge):
    """RFC 7636 as the certified providers require it (SPEC §14): of a public client, of an app added with
    --require-pkce, or of every app by the operator's setting; a confidential client may omit it. S256 only
    (RFC 9700 §2.1.1). Whatever was asked is enforced (RFC 9700 §4.8.2, no downgrade either way): a code
    asked for with a challenge needs its verifier, one asked for without refuses any code_verifier."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __init__(self, *, required_of_every_app: bool) -> None:
        super().__init__(required=False)  # whom it is required of is the app's rule (required_of)
        self.required_of_every_app = required_of_every_app

    def required_of(self, client: Client) -> bool:
        return client.app.oidc().pkce_rule(required_of_every_app=self.required_of_every_app).required

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if "code_challenge" not in data and "code_challenge_method" not in data:
            if self.required_of(grant.request.client):
                raise refusals.because(InvalidRequestError("PKCE is required of this app: send code_challenge "
                                                           "with code_challenge_method=S256."), "pkce_missing")
            return
        if data.get("code_challenge_method") != "S256":
            raise refusals.because(InvalidRequestError("code_challenge_method must be S256."), "pkce_method")
        if not data.get("code_challenge"):
            raise refusals.because(InvalidRequestError("Missing 'code_challenge'"), "pkce_missing")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        request = grant.request
        if not request.authorization_code.code_challenge:
            if "code_verifier" in request.form:
                raise refusals.because(InvalidGrantError("This code was asked for without a code_challenge: a "
                                                         "code_verifier cannot redeem it (RFC 9700 section 4.8.2)."),
                                       "pkce_verifier_unexpected")
            if self.required_of(request.client):  # the app's rule changed since: it asks for PKCE now
                raise refusals.because(InvalidGrantError("This code was asked for without PKCE, which this app "
                                                         "requires."), "pkce_required")
            return
        if not request.form.get("code_verifier"):
            # The code's verification fails (RFC 7636 §4.6: invalid_grant), as FAPI 2.0's suite and the
            # certified providers answer; Authlib says invalid_request.
            raise refusals.because(InvalidGrantError("This code was asked for with a code_challenge: redeem it "
                                                     "with its code_verifier."), "pkce_verifier_missing")
        try:
            super().validate_code_verifier(grant, result)  # a well-formed verifier (invalid_request), and matching
        except InvalidRequestError as error:
            refusals.because(error, "pkce_verifier_malformed")
            raise
        except InvalidGrantError as error:
            refusals.because(error, "pkce_verifier_mismatch")
            raise

"""RFC 8628 at Authlib's token endpoint: the screen's poll (oidc.device.flow) and, once the person approved,
its one token answer: the tokens of a code grant (an ID token with scope openid, a refresh token with
offline_access or for a public client, DPoP-bound when the poll carries a proof) of the screen's own
session, which the approval opened under the device limit (flows.device_approval)."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc8628 import DeviceCodeGrant

from oidc.clients import authentication
from oidc.device import flow as device_flow
from oidc.token import refresh_tokens as refresh
from oidc.core import dpop
from oidc.token import tokens
from oidc.core.models import Client, SignedIn


class DeviceGrant(DeviceCodeGrant):
    """Authlib's grant, with citylogin's poll: another app's device_code, or a made-up one, is
    invalid_grant (RFC 8628 §3.5 leaves it to RFC 6749's), and the answer is written before it is given."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(authentication.TOKEN_ENDPOINT_AUTH_METHODS)

    def validate_token_request(self) -> None:
        if not self.request.payload.data.get("device_code"):
            raise InvalidRequestError("Missing 'device_code'.")
        client: Client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("This app is not allowed the device authorization grant.")
        ctx = self.server.ctx
        self.request.client = client
        self.request.credential = device_flow.poll(ctx, device_code=self.request.payload.data["device_code"],
                                                   client_id=client.client_id)

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """The approved request's one answer: its grant recorded (the request spent with it), then its
        tokens signed."""
        ctx, client, approved = self.server.ctx, self.request.client, self.request.credential
        app = client.app
        key = dpop.request_key(bound_to=approved.jkt, required=app.oidc().dpop_required())
        scope = approved.scope
        user = SignedIn(user_uuid=approved.user_uuid, session_id=approved.session_id, device_id=approved.device_id,
                        auth_time=approved.auth_time, amr=approved.amr, jkt=key,
                        refresh_generation=tokens.first_refresh_generation(client, scope=scope),
                        grant_id=refresh.new_grant_id(),
                        refresh_jkt=key, grant_scope=scope)
        device_flow.redeem(ctx, approved, grant=user.grant(client_id=client.client_id, scope=scope), app=app)
        # With scope openid, an ID token as a refresh's (OpenID Connect Core §12.2): no nonce was asked
        token = tokens.refreshed_tokens(ctx, client=client, user=user, scope=scope)
        return 200, token, self.TOKEN_RESPONSE_HEADER

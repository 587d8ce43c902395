"""The device authorization grant (RFC 8628): POST /oidc/device_authorization (§3.1, §3.2), the user
code and the person's approval on a device they already use (§3.3), and the screen's polls at the token
endpoint (§3.4, §3.5: authorization_pending, slow_down, expired_token, access_denied), kept in the
one_time_tokens table by the digests of both codes."""

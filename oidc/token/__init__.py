"""The token endpoint (RFC 6749 §3.2, §5), read top-down: the routes (endpoint: POST /oidc/token, and POST /oidc/revoke
for RFC 7009's revocation), Authlib's server that registers the grants (server), the client's authentication
(oidc.clients), one module per grant (authorization_code, RFC 6749 §4.1 with OpenID Connect Core §3.1.3 and PKCE,
RFC 7636, in pkce; refresh_token, §6; client_credentials, §4.4; device_code, RFC 8628 §3.4-3.5), and what a grant's
answer holds (tokens: RFC 9068 access tokens, refresh tokens, ID tokens). Below them: the sealed codes (codes), a
code's redemption in one transaction (redemption), a refresh token's text (refresh_tokens) and its rotation
(refresh_rotation, OAuth 2.1 §4.3.1)."""

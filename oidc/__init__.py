"""The OpenID Provider: apps sign people in through citylogin by OpenID Connect, on Authlib's
authorization server; the sign-in itself is citylogin's own, on the person's device.

The packages, one an endpoint or a standard, so that a reader with the RFC open finds its rules in one
place. They stand in floors, lowest first; a package imports only the packages listed above it here
(the ones it builds on), never one below (tests/test_package_layout.py holds the code to it):

1. core           what every endpoint shares: the context, the records, the stores, refusals and OAuth's
                  error format (RFC 6749 §5.2), parameter checks, redirect URIs (RFC 9700 §4.1), claims and
                  ID tokens (OIDC Core §5.4, §2), DPoP (RFC 9449), FAPI 2.0, per-address limits
2. app_grants     an app's grant on a person's session: its end, remembered consent, the data export
3. discovery      the provider's metadata (OpenID Connect Discovery 1.0, RFC 8414), JWKS, /.well-known
4. registration   apps that register themselves (RFC 7591, RFC 7592, OIDC Dynamic Client Registration 1.0)
5. userinfo       the userinfo endpoint (OIDC Core §5.3) and what introspection (RFC 7662) asks of our tokens
6. clients        the apps as OAuth clients: lookup, client authentication (RFC 6749 §2.3; RFC 7523 and
                  OIDC Core §9: private_key_jwt)
7. device         the device authorization grant (RFC 8628)
8. token          the token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6), its grants, codes, revocation (RFC 7009)
9. logout         RP-Initiated Logout 1.0 and Back-Channel Logout 1.0
10. authorization the authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1) with request objects
                  (RFC 9101), pushed requests (RFC 9126) and response modes
11. oidc itself   views (the /oidc blueprint), service (what the packages outside oidc use), parameters
                  (the OpenAPI description of the protocol's parameters)
"""

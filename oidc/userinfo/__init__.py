"""The person behind an app's access token: GET|POST /oidc/userinfo (OpenID Connect Core §5.3, signed
by §5.3.2 when the app registered an algorithm; DPoP-bound tokens by RFC 9449 §7), and what token
introspection (RFC 7662, served by sessions/) asks of a token this provider issued: that its app is
still registered and still holds the grant it came from."""

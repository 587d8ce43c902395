"""Apps that register themselves and manage their registration: POST /oidc/register (RFC 7591 §3,
OpenID Connect Dynamic Client Registration 1.0 §3) and the registration's own URL (RFC 7592 §2); the
client metadata member by member (RFC 7591 §2, Dynamic Registration §2) by the rules `apps add` and the
admin API share: redirect URIs, the app's keys for private_key_jwt (RFC 7523, OIDC Core §9), the URLs
citylogin shows or fetches, and the request_uris an app may name (RFC 9101 §5.2, OIDC Core §6.2); the
registration as answered (RFC 7591 §3.2.1, RFC 7592 §3) and an app's update against an operator's."""

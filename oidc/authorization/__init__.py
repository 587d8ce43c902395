"""The authorization endpoint: GET|POST /oidc/authorize (OpenID Connect Core §3.1.2, RFC 6749 §4.1.1,
§4.1.2). The request is checked before Authlib reads it (RFC 6749 §3.1, §4.1.2.1: an error goes to a
trusted redirect URI only; prompt and max_age, OIDC Core §3.1.2.1), with its PKCE challenge (RFC 7636
§4.3, §4.4: the code grant's extension in oidc.token), kept for the browser that started it, and
finished by that browser once the person signed in (OIDC Core §3.1.2.3-§3.1.2.6). Beside it: request
objects by value and by reference (RFC 9101, OIDC Core §6), pushed authorization requests (RFC 9126),
the code bound to a DPoP key by dpop_jkt (RFC 9449 §10), and the response in the query or by OAuth 2.0
Form Post Response Mode, with RFC 9207's `iss`."""

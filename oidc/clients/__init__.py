"""The apps as OAuth clients: the app a `client_id` names, if it signs people in (RFC 6749 §2.2, lookup), and how
it authenticates at the token, PAR, revocation and device authorization endpoints (RFC 6749 §2.3:
client_secret_basic and client_secret_post (§2.3.1); private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9);
none for a public client, RFC 6749 §2.1), by Authlib's ClientAuthentication (authentication)."""

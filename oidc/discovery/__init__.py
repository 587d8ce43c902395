"""The public documents of the OpenID Provider: its metadata (OpenID Connect Discovery 1.0 §3, §4; RFC
8414 §2, §3) under both well-known names, its JWKS (RFC 7517 §5), and the Shared Signals transmitter's
configuration; each made once per issuer and key ring and served with a strong ETag (RFC 9110 §13.1.2)
by the /.well-known blueprint every service mounts."""

"""The apps that use citylogin (relying parties, SPEC §11): their registry and credentials, and what
they receive: introspection answers and the CAEP session-revoked events, by poll (RFC 8936) and push
(RFC 8935). Served over HTTP by session_manager/ (/session/introspect, /ssf, the SSF metadata)."""

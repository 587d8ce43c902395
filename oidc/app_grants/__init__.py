"""An app's grant on a person's session, beside the session's own life: how a grant ends while the
session goes on (a code used twice, RFC 6749 §4.1.2; a refresh token reused after the grace, RFC 9700
§4.14; the app's own revocation, RFC 7009) and is told through the back channel's outbox; the consent
the person gave an app and withdraws (OpenID Connect Core §3.1.2.4); and what of both goes into the
person's data export."""

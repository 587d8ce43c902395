"""What every endpoint of the OpenID Provider shares, below all of them: the provider on an app context
(its issuer and stores), the records Authlib's grants ask for and their DynamoDB store, the refusals an
operator sees and their OAuth error format (RFC 6749 §5.2), the parameter checks of any request (RFC 6749
§3.1, §3.2, Appendix A; the back channel's one client authentication method, §2.3), the pages the browser
is answered with (OAuth 2.0 Form Post Response Mode's auto-submitting page), redirect URI rules (RFC 9700
§4.1, RFC 8252 §7.3), the person's claims by scope and the ID tokens (OpenID Connect Core §5.4, §2), DPoP
(RFC 9449), the FAPI 2.0 Security Profile's rules, and the per-address allowance of kept requests."""

"""Sign-out between citylogin and its apps: OpenID Connect RP-Initiated Logout 1.0 (GET|POST
/oidc/logout, §2 and §3: the request checked by its id_token_hint, client_id and registered
post_logout_redirect_uri, kept for the browser's device), OpenID Connect Back-Channel Logout 1.0 (§2.4
the logout token, §2.5 its delivery: every app given an ID token of a session that ends), and the apps
signed in on a person's sessions, which the person signs out one by one."""

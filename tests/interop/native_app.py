"""A native app as RFC 8252 describes it, in its own process: a public client (no secret) that signs in
through the system browser with PKCE S256 and a loopback redirect on a port the OS picks
(http://127.0.0.1:{port}/callback), with Authlib's OAuth2 client, unmodified, the way AppAuth does on a
desktop or a phone. It prints the authorization URL (its "open the browser"), waits for the browser at its
loopback listener, redeems the code, then answers commands on stdin: `renew` (refresh token, then
userinfo with the new access token). Every answer is one JSON line on stdout.

    python tests/interop/native_app.py ISSUER CLIENT_ID"""
from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_callback(listener: HTTPServer) -> dict[str, str]:
    """The one request the browser makes to the loopback redirect: its query."""
    got: dict[str, str] = {}

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            got.update({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
            got["path"] = urlsplit(self.path).path
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"Signed in: you can close this window.")

        def log_message(self, *args) -> None:
            pass

    listener.RequestHandlerClass = Callback
    listener.handle_request()
    return got


def main(issuer: str, client_id: str) -> None:
    metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    listener = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)   # any free port (RFC 8252 §7.3)
    redirect_uri = f"http://127.0.0.1:{listener.server_port}/callback"
    client = OAuth2Session(client_id, redirect_uri=redirect_uri, scope="openid profile",
                           token_endpoint_auth_method="none", code_challenge_method="S256")
    verifier = generate_token(48)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=generate_token(16))
    say(authorization_url=url)
    callback = wait_for_callback(listener)
    if callback.get("state") != state or callback.get("iss") != metadata["issuer"]:
        say(error="state or iss mismatch", callback=callback)
        return
    token = client.fetch_token(metadata["token_endpoint"], code=callback["code"], code_verifier=verifier,
                               state=state)
    userinfo = client.get(metadata["userinfo_endpoint"])
    say(signed_in=True, port=listener.server_port, userinfo=userinfo.json(),
        has_refresh_token="refresh_token" in token)
    for line in sys.stdin:
        if line.strip() != "renew":
            continue
        try:
            client.refresh_token(metadata["token_endpoint"])
        except Exception as error:   # the OAuth error the token endpoint answered, as the app sees it
            say(renewed=False, error=getattr(error, "error", type(error).__name__))
            status = requests.get(metadata["userinfo_endpoint"], timeout=10, headers={
                "Authorization": f"Bearer {client.token['access_token']}"}).status_code
            say(userinfo_status=status)
            continue
        say(renewed=True, userinfo_status=client.get(metadata["userinfo_endpoint"]).status_code)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

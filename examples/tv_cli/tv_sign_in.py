"""A command line (or a TV, a console: anything without a keyboard or a browser worth the name) that
signs a person in with citylogin by the device authorization grant (RFC 8628), through Authlib's
OAuth 2.0 client: it asks for a code, shows it with a QR code of the link that carries it, polls the
token endpoint at the interval citylogin gives (5 s more after each `slow_down`, kept from then on)
while the person approves on a phone or laptop they already use, checks the ID token against
citylogin's keys, and says who signed in (userinfo). It never prints the device code or a token.

Register it once (`--public`: a command line cannot keep a secret), then run it:

    .venv/bin/citylogin apps add "TV app" --device-flow --public --json > tv-app.json
    .venv/bin/python examples/tv_cli/tv_sign_in.py --issuer http://localhost:5000 \\
        --client-id "$(jq -r .client_id tv-app.json)"

Settings: `--issuer` or CITYLOGIN_URL (citylogin's address, its issuer exactly), `--client-id` or
CLIENT_ID, `--scope` or SCOPE ("openid profile" by default), and for a confidential app its secret in
CLIENT_SECRET or a file named by CLIENT_SECRET_FILE (never an argument: a command line is readable by
every user of the machine).

Exit status: 0 signed in; 3 the person denied it; 4 the code expired first; 1 anything else (citylogin
unreachable or refusing the app, a bad ID token); 2 a usage error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

import qrcode
import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5          # RFC 8628 §3.5: each slow_down adds 5 s to the interval, for every later poll
TIMEOUT = 30                # seconds any one request to citylogin may take

SIGNED_IN, FAILED, USAGE, DENIED, EXPIRED = 0, 1, 2, 3, 4


class SignInFailed(Exception):
    """The sign-in ended without a person: the message to print and the exit status."""

    def __init__(self, message: str, status: int = FAILED) -> None:
        super().__init__(message)
        self.status = status


def discover(client: OAuth2Session, issuer: str) -> dict[str, Any]:
    """citylogin's discovery document, which must name the issuer we were given and the grant."""
    answer = client.get(issuer + "/.well-known/openid-configuration", timeout=TIMEOUT, withhold_token=True)
    answer.raise_for_status()
    metadata = answer.json()
    if metadata.get("issuer") != issuer:
        raise SignInFailed(f"{issuer} says its issuer is {metadata.get('issuer')!r}: give that address instead")
    if "device_authorization_endpoint" not in metadata:
        raise SignInFailed(f"{issuer} does not offer the device authorization grant")
    return metadata


def start(client: OAuth2Session, metadata: Mapping[str, Any], scope: str) -> dict[str, Any]:
    """POST the device authorization request (RFC 8628 §3.1), authenticated as at the token endpoint
    (Authlib's client authentication: Basic with a secret, `client_id` in the body without one)."""
    answer = client.post(metadata["device_authorization_endpoint"], data={"scope": scope}, timeout=TIMEOUT,
                         auth=client.client_auth(client.token_endpoint_auth_method))
    body = _json_object(answer)
    if answer.status_code != 200:
        raise SignInFailed(f"citylogin refused to start: {body.get('error', answer.status_code)}"
                           f"{': ' + body['error_description'] if body.get('error_description') else ''}")
    return body


def show(started: Mapping[str, Any], out: TextIO = sys.stdout) -> None:
    """What the person needs on the screen: the link, the code, and a QR code of the link with the code
    in it (a phone's camera opens it). Flushed, so that a pipe or a terminal shows it at once."""
    print(f"To sign in, open {started['verification_uri']} on your phone or computer", file=out)
    print(f"and enter the code:  {started['user_code']}", file=out)
    complete = started.get("verification_uri_complete")
    if complete:
        print(f"\nOr scan this QR code (it opens {complete}):\n", file=out)
        code = qrcode.QRCode(border=2)
        code.add_data(complete)
        code.print_ascii(out=out, invert=True)   # dark modules as spaces: a dark terminal shows it the right way up
    print(f"\nWaiting for you to approve it (the code expires in {time_left(int(started['expires_in']))})...",
          file=out, flush=True)


def time_left(seconds: int) -> str:
    """`seconds` in whole minutes where it is, in seconds otherwise: "1 minute", "10 minutes", "90 seconds"."""
    minutes, rest = divmod(seconds, 60)
    if minutes and not rest:
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"


def poll(client: OAuth2Session, metadata: Mapping[str, Any], started: Mapping[str, Any],
         sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """The token endpoint at the interval (RFC 8628 §3.4-3.5) until it answers tokens or ends it."""
    interval = int(started.get("interval", 5))
    deadline = clock() + int(started["expires_in"])
    while clock() < deadline:
        sleep(interval)
        try:
            return client.fetch_token(metadata["token_endpoint"], grant_type=DEVICE_CODE_GRANT,
                                      device_code=started["device_code"], timeout=TIMEOUT)
        except OAuthError as refused:
            if refused.error in ("authorization_pending", "temporarily_unavailable"):
                continue
            if refused.error == "slow_down":
                interval += SLOW_DOWN_STEP
                continue
            if refused.error == "access_denied":
                raise SignInFailed("The sign-in was denied on the approving device.", DENIED) from None
            if refused.error == "expired_token":
                raise SignInFailed("The code expired before it was approved: run this again for a new one.",
                                   EXPIRED) from None
            raise SignInFailed(f"citylogin refused the sign-in: {refused.error}"
                               f"{': ' + refused.description if refused.description else ''}") from None
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as error:
            # citylogin briefly unreachable or busy (a 503): the code is still good, ask again next time
            print(f"(citylogin did not answer this time: {type(error).__name__}; asking again)", file=sys.stderr)
    raise SignInFailed("The code expired before it was approved: run this again for a new one.", EXPIRED)


def check_id_token(client: OAuth2Session, metadata: Mapping[str, Any], client_id: str,
                   id_token: str) -> dict[str, Any]:
    """The ID token's signature (citylogin's published keys), issuer, audience and expiry."""
    keys = KeySet.import_key_set(client.get(metadata["jwks_uri"], timeout=TIMEOUT, withhold_token=True).json())
    try:
        token = jwt.decode(id_token, keys, algorithms=metadata.get("id_token_signing_alg_values_supported"))
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": metadata["issuer"]},
                              aud={"essential": True, "value": client_id},
                              exp={"essential": True}).validate(token.claims)
    except JoseError as error:
        raise SignInFailed(f"citylogin's ID token did not check out: {error}") from None
    return dict(token.claims)


def sign_in(issuer: str, client_id: str, client_secret: str | None, scope: str,
            out: TextIO = sys.stdout) -> dict[str, Any]:
    """The whole sign-in; the person as userinfo gives them."""
    client = OAuth2Session(client_id, client_secret,
                           token_endpoint_auth_method="client_secret_basic" if client_secret else "none")
    metadata = discover(client, issuer)
    started = start(client, metadata, scope)
    show(started, out)
    tokens = poll(client, metadata, started)
    userinfo = client.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)   # the access token as Bearer
    person = _json_object(userinfo)
    if userinfo.status_code != 200:
        raise SignInFailed(f"citylogin's userinfo answered {userinfo.status_code}: {person.get('error', '')}")
    if "id_token" in tokens and check_id_token(client, metadata, client_id, tokens["id_token"])["sub"] != person["sub"]:
        raise SignInFailed("userinfo names another person than the ID token")   # OpenID Connect Core §5.3.2
    return person


def _json_object(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def setting(environ: Mapping[str, str], name: str) -> str | None:
    """`name` from the environment, or read from the file `name`_FILE names; None when neither is set."""
    value = environ.get(name) or (Path(environ[f"{name}_FILE"]).read_text() if environ.get(f"{name}_FILE") else "")
    return value.strip() or None


def main(argv: list[str] | None = None, environ: Mapping[str, str] = os.environ) -> int:
    parser = argparse.ArgumentParser(description="Sign in with citylogin by a code shown here and approved "
                                                 "on another device (OAuth 2.0 device authorization grant).")
    parser.add_argument("--issuer", default=environ.get("CITYLOGIN_URL"),
                        help="citylogin's address, its issuer exactly (default: $CITYLOGIN_URL)")
    parser.add_argument("--client-id", default=environ.get("CLIENT_ID"),
                        help="the app's client_id from `citylogin apps add --device-flow` (default: $CLIENT_ID)")
    parser.add_argument("--scope", default=environ.get("SCOPE", "openid profile"),
                        help='what to ask for (default: $SCOPE, else "openid profile")')
    arguments = parser.parse_args(argv)
    if not arguments.issuer or not arguments.client_id:
        parser.error("give --issuer and --client-id (or CITYLOGIN_URL and CLIENT_ID in the environment)")
    try:
        person = sign_in(arguments.issuer.rstrip("/"), arguments.client_id, setting(environ, "CLIENT_SECRET"),
                         arguments.scope)
    except SignInFailed as failed:
        print(failed, file=sys.stderr)
        return failed.status
    except requests.RequestException as error:
        print(f"Could not reach citylogin at {arguments.issuer}: {error}", file=sys.stderr)
        return FAILED
    print(f"Signed in as {person.get('preferred_username', '?')} (sub {person['sub']})", flush=True)
    return SIGNED_IN


if __name__ == "__main__":
    sys.exit(main())

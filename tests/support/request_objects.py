"""Request objects (RFC 9101) as an app makes them, for tests: its keys (one of each algorithm's type),
their public JWK Set as it registers them, objects signed with joserfc or left unsigned; and a deployment
of `citylogin serve` processes whose apps the CLI added with each request-object option."""
from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from click.testing import CliRunner
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from citylogin.cli.main import main
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.request_object_host import request_object_host
from tests.support.services import running_process

ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class AppKeys:
    rsa: RSAKey
    ec: ECKey
    okp: OKPKey

    def for_alg(self, alg: str) -> RSAKey | ECKey | OKPKey:
        return {"RS256": self.rsa, "PS256": self.rsa, "ES256": self.ec, "EdDSA": self.okp}[alg]

    def public_jwks(self) -> str:
        """The JWK Set the app registers (apps add --jwks FILE holds this text)."""
        return json.dumps({"keys": [key.as_dict(private=False) for key in (self.rsa, self.ec, self.okp)]})

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(json.loads(self.public_jwks()))


def new_app_keys(prefix: str = "k") -> AppKeys:
    return AppKeys(rsa=RSAKey.generate_key(2048, parameters={"kid": f"{prefix}-rsa"}),
                   ec=ECKey.generate_key("P-256", parameters={"kid": f"{prefix}-ec"}),
                   okp=OKPKey.generate_key("Ed25519", parameters={"kid": f"{prefix}-okp"}))


def standard_claims(client_id: str, issuer: str, *, lifetime: int = 300, **params: Any) -> dict[str, Any]:
    """What a signed object carries besides the request (RFC 9101 §4, §10.8): iss, aud, iat, nbf, exp, jti."""
    now = int(time.time())
    return {"iss": client_id, "aud": issuer, "iat": now, "nbf": now, "exp": now + lifetime,
            "jti": uuid.uuid4().hex, "client_id": client_id, **params}


def signed(key: RSAKey | ECKey | OKPKey, claims: dict[str, Any], *, alg: str = "RS256",
           header: dict[str, Any] | None = None) -> str:
    """A compact JWS of `claims` by `key` (its kid in the header unless `header` says otherwise)."""
    made = {"alg": alg, "typ": "oauth-authz-req+jwt", "kid": key.kid, **(header or {})}
    made = {name: value for name, value in made.items() if value is not None}
    return jwt.encode(made, claims, key, algorithms=[alg])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An unsigned object (alg none): its header and claims, and an empty signature."""
    return f"{b64(json.dumps(header or {'alg': 'none'}).encode())}.{b64(json.dumps(claims).encode())}."


# --- a deployment whose apps send request objects -------------------------------------------------

REDIRECT = "https://app.example/callback"


@dataclass(frozen=True)
class Deployment:
    """`citylogin serve` processes over one set of tables, the issuer they share, the apps the CLI added
    (name -> {"client_id", "client_secret", ...}), the apps' keys, and where they publish objects."""

    hosts: tuple[str, ...]
    issuer: str
    apps: dict[str, dict]
    keys: AppKeys
    published_at: str
    published: Any

    def client_id(self, name: str) -> str:
        return str(self.apps[name]["client_id"])


APP_OPTIONS = {
    # signs its objects with any algorithm, its request_uri registered
    "signed": lambda jwks, host: ("--jwks", jwks, "--request-uri", f"{host}/objects/signed",
                                  "--request-uri", f"{host}/objects/fault"),
    "unsigned": lambda jwks, host: ("--allow-unsigned-request-objects",),
    "strict": lambda jwks, host: ("--jwks", jwks, "--require-signed-request-object",
                                  "--request-object-signing-alg", "PS256"),
    "plain": lambda jwks, host: (),
}


@contextmanager
def request_object_deployment(dynamodb_endpoint: str, data_dir: Path, *, hosts: int = 1) -> Iterator[Deployment]:
    """The apps of APP_OPTIONS added by `citylogin apps add` (before the processes start), then `hosts`
    processes of `citylogin serve`, the first one's URL the issuer."""
    ports = [free_port() for _ in range(hosts)]
    issuer = f"http://127.0.0.1:{ports[0]}"
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("reqobj") + "_",
                         "data_dir": data_dir, "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS}),
           "CITYLOGIN_PUBLIC_URL": issuer, "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    keys = new_app_keys()
    jwks = data_dir / "app-jwks.json"
    jwks.write_text(keys.public_jwks())
    with ExitStack() as stack:
        published_at, published = stack.enter_context(request_object_host())
        assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
        apps = {name: add_app(env, name, redirect_uris=(REDIRECT,), options=options(str(jwks), published_at))
                for name, options in APP_OPTIONS.items()}
        urls = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin", "serve"], port=port, timeout=60,
            env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)})) for port in ports)
        yield Deployment(hosts=urls, issuer=issuer, apps=apps, keys=keys, published_at=published_at,
                         published=published)

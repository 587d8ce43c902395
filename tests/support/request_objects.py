"""Request objects (RFC 9101) as an app makes them, for tests: its keys (one of each algorithm's type),
their public JWK Set as it registers them, and objects signed with joserfc or left unsigned."""
from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

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

"""The provider floor (issue 53): the least an OpenID Provider can do on citylogin's stack (Python, Flask,
DynamoDB through citylogin's own lean client, one WSGI server) to answer the peer bench's requests as
citylogin and node-oidc-provider answer them. The peer bench (bench/peer_bench.py --floor) measures it
beside them, under the same server: its ratio to node-oidc-provider is the most any change to citylogin's
own code could reach on this stack, row by row.

    FLOOR_SECRET=<hex> FLOOR_RSA_KEY=<PEM> FLOOR_CLIENT_ID=.. FLOOR_CLIENT_SECRET=.. FLOOR_ISSUER=.. \\
    CITYLOGIN_DYNAMODB_ENDPOINT_URL=.. CITYLOGIN_TABLE_PREFIX=.. \\
    gunicorn --worker-class citylogin.server.gunicorn_worker.ThreadWorker --workers 2 --threads 64 \\
        'bench.peer_floor:create_app()'

What it keeps, per request (the work no provider skips):
- discovery: the document, built once;
- the authorization request: the client, its redirect URI and PKCE checked; the person's part, one
  request (GET /floor/signin, signed in by a cookie as a browser is at its provider), one PutItem (the
  code, whose claims travel sealed with it under an HMAC);
- the code's redemption: the client's Basic credentials (one constant-time compare of digests), the
  code's seal, redirect URI and PKCE verifier; one TransactWriteItems (the code spent if unspent, the
  grant and the access token's record written); an RS256 ID token (RSA 2048, as both peers sign);
- the refresh grant: the client, the refresh token's seal, one TransactWriteItems (the grant rotated if the
  token is its current one, a new access token's record); an RS256 ID token;
- userinfo and introspection: the access token (opaque, 32 random bytes: cheaper than a signed one to
  check) looked up by its SHA-256 digest, one GetItem; introspection checks the client first.

What it leaves out, which citylogin does: sessions bound to a device, the device limit, events, the
grant's link to the session (so that a logout ends the app's tokens), consent, audit, rate limits,
metrics, the access line, error pages for each refusal (a bare 400/401 here), input checks beyond what
the answer needs. Its table is its own: `<prefix>peer_floor`, one string key `k`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from flask import Flask, Response, redirect, request

from common.database import dynamo

TABLE = "peer_floor"
SCOPE = "openid profile offline_access"
ACCESS_TTL, CODE_TTL, ID_TTL = 3600, 60, 3600
DISCOVERY = "/.well-known/openid-configuration"


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int) -> dict:
    return {"N": str(value)}


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PeerFloorTable:
    """The floor's one table, made before its server starts."""

    def __init__(self, endpoint_url: str | None, prefix: str) -> None:
        self.db, self.name = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url), prefix + TABLE

    def create(self) -> None:
        try:
            self.db.create_table(TableName=self.name, BillingMode="PAY_PER_REQUEST",
                                 AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                                 KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
            self.db.get_waiter("table_exists").wait(TableName=self.name)
        except self.db.exceptions.ResourceInUseException:
            pass


class Refused(Exception):
    """A request the floor does not answer with 200 (it does not say why)."""


class FloorProvider:
    """The keys, the one client and the table; each method one endpoint's work."""

    def __init__(self, *, endpoint_url: str | None, prefix: str, secret: bytes, rsa_pem: bytes, issuer: str,
                 client_id: str, client_secret: str, redirect_uri: str) -> None:
        self.db = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url, parameter_validation=False)
        self.table = prefix + TABLE
        self.secret = secret
        self.rsa = load_pem_private_key(rsa_pem, password=None)
        self.issuer, self.client_id, self.redirect_uri = issuer, client_id, redirect_uri
        self.client_secret_digest = hashlib.sha256(client_secret.encode()).digest()
        self.metadata = orjson.dumps({
            "issuer": issuer, "authorization_endpoint": issuer + "/authorize", "token_endpoint": issuer + "/token",
            "userinfo_endpoint": issuer + "/userinfo", "introspection_endpoint": issuer + "/introspect",
            "jwks_uri": issuer + "/jwks", "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"], "scopes_supported": SCOPE.split(),
            "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    # --- the seal: what a code and a refresh token carry, under the floor's HMAC ------------------

    def _seal(self, claims: dict) -> str:
        body = _b64(orjson.dumps(claims))
        return f"{body}.{_b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest()[:16])}"

    def _opened(self, sealed: str) -> dict:
        body, _, mac = sealed.partition(".")
        if not hmac.compare_digest(mac, _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest()[:16])):
            raise Refused
        return orjson.loads(_unb64(body))

    def check_client(self, authorization: str) -> None:
        """client_secret_basic (RFC 6749 §2.3.1): the id and secret form-decoded, the secret's digest
        compared in constant time."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise Refused
        client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
        if unquote(client_id) != self.client_id or not hmac.compare_digest(
                hashlib.sha256(unquote(client_secret).encode()).digest(), self.client_secret_digest):
            raise Refused

    # --- the endpoints ----------------------------------------------------------------------------

    def authorize(self, args: Any) -> str:
        """The authorization request checked and sealed into the sign-in step's URL (nothing stored)."""
        if (args.get("response_type") != "code" or args.get("client_id") != self.client_id
                or args.get("redirect_uri") != self.redirect_uri or args.get("code_challenge_method") != "S256"
                or not args.get("code_challenge") or "openid" not in args.get("scope", "").split()):
            raise Refused
        sealed = self._seal({"challenge": args["code_challenge"], "nonce": args.get("nonce"),
                             "state": args.get("state"), "scope": args["scope"], "exp": int(time.time()) + 600})
        return "/floor/signin?" + urlencode({"request": sealed})

    def sign_in(self, account: str, sealed_request: str) -> str:
        """The person (signed in at the provider by its cookie) lets the app in: one PutItem, the
        code, and the redirect to the app."""
        asked = self._opened(sealed_request)
        if not account or asked["exp"] < time.time():
            raise Refused
        code_id = secrets.token_urlsafe(16)
        code = code_id + "." + self._seal({"sub": account, "challenge": asked["challenge"], "nonce": asked["nonce"],
                                           "scope": asked["scope"], "exp": int(time.time()) + CODE_TTL})
        self.db.put_item(TableName=self.table,
                         Item={"k": _s("code#" + code_id), "ttl": _n(int(time.time()) + CODE_TTL)})
        query = {"code": code} | ({"state": asked["state"]} if asked["state"] else {})
        return f"{self.redirect_uri}?{urlencode(query)}"

    def redeem(self, form: Any) -> dict:
        code_id, _, sealed = form.get("code", "").partition(".")
        granted = self._opened(sealed)
        verifier = form.get("code_verifier", "")
        if (granted["exp"] < time.time() or form.get("redirect_uri") != self.redirect_uri
                or not hmac.compare_digest(_b64(hashlib.sha256(verifier.encode()).digest()), granted["challenge"])):
            raise Refused
        grant_id = secrets.token_urlsafe(16)
        tokens, writes = self._tokens(granted["sub"], grant_id, 1, granted["nonce"])
        self._write([{"Delete": {"TableName": self.table, "Key": {"k": _s("code#" + code_id)},
                                 "ConditionExpression": "attribute_exists(k)"}},
                     {"Put": {"TableName": self.table, "Item": {"k": _s("grant#" + grant_id), "sub": _s(granted["sub"]),
                                                               "gen": _n(1), "refresh": _s(writes["refresh"])}}},
                     writes["access"]])
        return tokens

    def refresh(self, form: Any) -> dict:
        carried = self._opened(form.get("refresh_token", ""))
        grant_id, generation = carried["grant"], carried["gen"]
        tokens, writes = self._tokens(carried["sub"], grant_id, generation + 1, None)
        self._write([{"Update": {"TableName": self.table, "Key": {"k": _s("grant#" + grant_id)},
                                 "UpdateExpression": "SET gen = :next, refresh = :new",
                                 "ConditionExpression": "gen = :gen AND refresh = :old",
                                 "ExpressionAttributeValues": {":next": _n(generation + 1), ":gen": _n(generation),
                                                               ":new": _s(writes["refresh"]),
                                                               ":old": _s(_digest(form["refresh_token"]))}}},
                     writes["access"]])
        return tokens

    def _write(self, items: list[dict]) -> None:
        try:
            self.db.transact_write_items(TransactItems=items)
        except self.db.exceptions.TransactionCanceledException:
            raise Refused from None

    def _tokens(self, sub: str, grant_id: str, generation: int, nonce: str | None) -> tuple[dict, dict]:
        """The answer (an opaque access token, the next refresh token, an RS256 ID token) and the
        writes that go with it (the access token's record, the refresh token's digest)."""
        now = int(time.time())
        access = secrets.token_urlsafe(32)
        refresh = self._seal({"grant": grant_id, "gen": generation, "sub": sub})
        id_claims = {"iss": self.issuer, "sub": sub, "aud": self.client_id, "iat": now, "exp": now + ID_TTL,
                     "at_hash": _b64(hashlib.sha256(access.encode()).digest()[:16])}
        if nonce:
            id_claims["nonce"] = nonce
        id_token = jwt.encode(id_claims, self.rsa, algorithm="RS256", headers={"kid": "floor-rs256"})
        record = {"Put": {"TableName": self.table, "Item": {
            "k": _s("at#" + _digest(access)), "sub": _s(sub), "grant": _s(grant_id), "exp": _n(now + ACCESS_TTL),
            "scope": _s(SCOPE)}}}
        answer = {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL, "refresh_token": refresh,
                  "id_token": id_token, "scope": SCOPE}
        return answer, {"access": record, "refresh": _digest(refresh)}

    def access(self, token: str) -> dict:
        """The access token's record, if it is one and unexpired: one GetItem."""
        item = self.db.get_item(TableName=self.table, Key={"k": _s("at#" + _digest(token))},
                                ConsistentRead=True).get("Item")
        if not item or int(item["exp"]["N"]) < time.time():
            raise Refused
        return item

    def userinfo(self, authorization: str) -> dict:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise Refused
        sub = self.access(token)["sub"]["S"]
        return {"sub": sub, "preferred_username": sub, "locale": "en", "zoneinfo": "UTC"}

    def introspect(self, authorization: str, token: str) -> dict:
        self.check_client(authorization)
        try:
            item = self.access(token)
        except Refused:
            return {"active": False}
        return {"active": True, "sub": item["sub"]["S"], "client_id": self.client_id, "scope": item["scope"]["S"],
                "exp": int(item["exp"]["N"]), "token_type": "Bearer"}


def _json(body: dict | bytes, status: int = 200) -> Response:
    return Response(body if isinstance(body, bytes) else orjson.dumps(body), status=status,
                    mimetype="application/json", headers={"Cache-Control": "no-store"})


def create_app() -> Flask:
    """The environment: FLOOR_SECRET (hex), FLOOR_RSA_KEY (PEM), FLOOR_ISSUER, FLOOR_CLIENT_ID,
    FLOOR_CLIENT_SECRET, FLOOR_REDIRECT_URI, CITYLOGIN_DYNAMODB_ENDPOINT_URL, CITYLOGIN_TABLE_PREFIX."""
    env = os.environ
    floor = FloorProvider(endpoint_url=env.get("CITYLOGIN_DYNAMODB_ENDPOINT_URL"),
                          prefix=env.get("CITYLOGIN_TABLE_PREFIX", ""), secret=bytes.fromhex(env["FLOOR_SECRET"]),
                          rsa_pem=env["FLOOR_RSA_KEY"].encode(), issuer=env["FLOOR_ISSUER"],
                          client_id=env["FLOOR_CLIENT_ID"], client_secret=env["FLOOR_CLIENT_SECRET"],
                          redirect_uri=env["FLOOR_REDIRECT_URI"])
    app = Flask("peer_floor")
    app.extensions["peer_floor"] = floor

    @app.errorhandler(Refused)
    @app.errorhandler(ValueError)  # a malformed seal, Basic header or number (binascii.Error is one)
    @app.errorhandler(KeyError)
    def refused(_: Exception):
        return _json({"error": "invalid_request"}, 400)

    @app.get("/readyz")
    def ready():
        return _json({"status": "ok"})

    @app.get(DISCOVERY)
    def discovery():
        return _json(floor.metadata)

    @app.get("/authorize")
    def authorize():
        return redirect(floor.authorize(request.args), 303)

    @app.get("/floor/signin")
    def sign_in():
        return redirect(floor.sign_in(request.cookies.get("floor_account", ""), request.args.get("request", "")), 303)

    @app.post("/token")
    def token():
        floor.check_client(request.headers.get("Authorization", ""))
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            return _json(floor.redeem(request.form))
        if grant_type == "refresh_token":
            return _json(floor.refresh(request.form))
        raise Refused

    @app.get("/userinfo")
    def userinfo():
        return _json(floor.userinfo(request.headers.get("Authorization", "")))

    @app.post("/introspect")
    def introspect():
        return _json(floor.introspect(request.headers.get("Authorization", ""), request.form.get("token", "")))

    return app

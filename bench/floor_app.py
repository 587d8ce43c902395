"""The floor: a bare Flask app that makes citylogin's own DynamoDB requests for a login (with its
challenge), a refresh and GET /session/me, and the work no implementation can skip (Argon2id
verify, the device's signature over the challenge, one EdDSA JWT signed or verified), with as
little Python around them as will do. citylogin's latency over this app's is its overhead.

    gunicorn --workers 2 --threads 8 --worker-class gthread 'bench.floor_app:create_app()'

Its requests are citylogin's, table by table (tests/test_bench_floor.py compares the two through
bench/dynamo_proxy.py): POST /login/challenge is one TransactWriteItems (rate_limits counter,
one_time_tokens challenge); POST /login/ one BatchGetItem (claims, users, rate_limits x3, presence,
devices, one_time_tokens), one TransactWriteItems (presence, sessions put and the previous session
ended, devices, users condition, one_time_tokens challenge spent, security_events, the login_history
row); POST /session/refresh one TransactWriteItems (sessions,
presence; the refresh token carries what it needs); GET /session/me one GetItem (sessions).

The items are the floor's own, in citylogin's tables and key schemas: POST /floor/users (set-up,
not measured) writes a user whose device is a certificate citylogin issued, so the benchmark's
login bodies work against both apps. Environment: CITYLOGIN_DYNAMODB_ENDPOINT_URL,
CITYLOGIN_TABLE_PREFIX, FLOOR_SECRET (hex; the JWT key and the refresh MAC, shared by the workers).
It imports only common.config (the Argon2id defaults), common.database.dynamo (the client) and
common.crypto.certificates (the ids a device certificate carries); it does not check who issued the
certificate (one ECDSA verify, well under 1 % of a login).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
import uuid

import argon2
import jwt
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, jsonify, request

from common.config import Settings
from common.crypto.certificates import (certificate_fingerprint, device_id_from_certificate, load_client_certificate,
                                        user_uuid_from_certificate)
from common.database import dynamo

LOGIN_PURPOSE = "citylogin-login:"
ISSUER, AUDIENCE, ACCESS_TTL, CHALLENGE_TTL = "floor", "floor", 900, 120


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int) -> dict:
    return {"N": str(value)}


class Floor:
    """The tables, the keys and the four operations; no validation beyond what the crypto needs."""

    def __init__(self, *, endpoint_url: str | None, prefix: str, secret: bytes, argon2_params: dict) -> None:
        self.db = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url)
        self.prefix = prefix
        self.t = {name: prefix + name for name in ("claims", "users", "rate_limits", "presence", "devices",
                                                   "one_time_tokens", "sessions", "security_events", "login_history")}
        self.secret = secret
        self.jwt_key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret).digest())
        self.jwt_public = self.jwt_key.public_key()
        self.hasher = argon2.PasswordHasher(**argon2_params)

    # --- set-up ----------------------------------------------------------------------------

    def create_user(self, username: str, password: str, client_cert: str) -> None:
        """The user, its claim, its device and an empty presence, under the certificate's ids: the
        benchmark hands the floor a user that citylogin registered and will not log in again."""
        cert = load_client_certificate(client_cert)
        user_uuid, device_id = user_uuid_from_certificate(cert), device_id_from_certificate(cert)
        puts = [(self.t["claims"], {"claim": _s(f"username#{username}"), "user_uuid": _s(user_uuid)}),
                (self.t["users"], {"user_uuid": _s(user_uuid), "username": _s(username),
                                   "password_hash": _s(self.hasher.hash(password))}),
                (self.t["devices"], {"user_uuid": _s(user_uuid), "device_id": _s(device_id), "status": _s("active"),
                                     "fingerprint": _s(certificate_fingerprint(cert))}),
                (self.t["presence"], {"user_uuid": _s(user_uuid), "version": _n(0), "entries": {"M": {}}})]
        for table, item in puts:
            self.db.put_item(TableName=table, Item=item)

    # --- the measured operations -------------------------------------------------------------

    def challenge(self, ip: str) -> str:
        value, now = secrets.token_urlsafe(32), int(time.time())
        self.db.transact_write_items(TransactItems=[
            {"Update": {"TableName": self.t["rate_limits"], "Key": {"limit_key": _s(f"challenge#ip:{ip}#{now // 60}")},
                        "UpdateExpression": "ADD uses :one SET expires_ttl = :ttl",
                        "ExpressionAttributeValues": {":one": _n(1), ":ttl": _n(now + 120)}}},
            {"Put": {"TableName": self.t["one_time_tokens"],
                     "Item": {"token_digest": _s(hashlib.sha256(value.encode()).hexdigest()), "kind": _s("challenge"),
                              "expires_epoch": _n(now + CHALLENGE_TTL)},
                     "ConditionExpression": "attribute_not_exists(token_digest)"}}])
        return value

    def login(self, body: dict, ip: str) -> dict | None:
        """The tokens, or None for a refusal (the floor does not say why). The ids come from the
        certificate, so that one batch read fetches everything, as citylogin's does."""
        username, challenge = body["username"], body["challenge"]
        cert = load_client_certificate(body["client_cert"])
        user_uuid, device_id = user_uuid_from_certificate(cert), device_id_from_certificate(cert)
        challenge_key = {"token_digest": _s(_digest(challenge))}
        user_key = {"user_uuid": _s(user_uuid)}
        got = self.db.batch_get_item(RequestItems={
            self.t["claims"]: {"Keys": [{"claim": _s(f"username#{username}")}], "ConsistentRead": True},
            self.t["users"]: {"Keys": [user_key], "ConsistentRead": True},
            self.t["rate_limits"]: {"Keys": [{"limit_key": _s(k)} for k in (
                f"lock#user:{username}", f"lock#ip:{ip}", f"fail#user:{username}")], "ConsistentRead": True},
            self.t["presence"]: {"Keys": [user_key], "ConsistentRead": True},
            self.t["devices"]: {"Keys": [{**user_key, "device_id": _s(device_id)}], "ConsistentRead": True},
            self.t["one_time_tokens"]: {"Keys": [challenge_key], "ConsistentRead": True},
        })["Responses"]
        first = {table[len(self.prefix):]: items[0] for table, items in got.items() if items}
        if not {"claims", "users", "presence", "devices", "one_time_tokens"} <= first.keys() \
                or first["claims"]["user_uuid"]["S"] != user_uuid:
            return None
        try:
            self.hasher.verify(first["users"]["password_hash"]["S"], body["password"])
            cert.public_key().verify(base64.b64decode(body["signature"]), (LOGIN_PURPOSE + challenge).encode(),
                                     ec.ECDSA(hashes.SHA256()))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError, InvalidSignature):
            return None
        return self._open(user_key, device_id, first["presence"], challenge_key, ip)

    def _open(self, user_key: dict, device_id: str, presence: dict, challenge_key: dict, ip: str) -> dict:
        """One transaction: the new presence (if unchanged since read), the new session, the
        device's previous session ended with its event, the device stamped, the user checked, the
        challenge spent, the history row."""
        now, session_id = int(time.time()), str(uuid.uuid4())
        version = int(presence["version"]["N"])
        previous = presence["entries"]["M"].get(device_id, {}).get("M", {}).get("session_id", {}).get("S")
        tokens, digest = self._tokens(user_key["user_uuid"]["S"], session_id, 1, device_id)
        entry = {"M": {"session_id": _s(session_id), "last_seen_epoch": _n(now)}}
        items = [
            {"Put": {"TableName": self.t["presence"], "Item": {**user_key, "version": _n(version + 1),
                                                               "entries": {"M": {device_id: entry}}},
                     "ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": _n(version)}}},
            {"Put": {"TableName": self.t["sessions"], "Item": {
                "session_id": _s(session_id), **user_key, "device_id": _s(device_id), "status": _s("active"),
                "refresh_gen": _n(1), "refresh_digest": _s(digest), "last_seen_epoch": _n(now)}}},
            {"Update": {"TableName": self.t["devices"], "Key": {**user_key, "device_id": _s(device_id)},
                        "UpdateExpression": "SET last_login_at = :now", "ConditionExpression": "#s = :active",
                        "ExpressionAttributeNames": {"#s": "status"},
                        "ExpressionAttributeValues": {":now": _n(now), ":active": _s("active")}}},
            {"ConditionCheck": {"TableName": self.t["users"], "Key": user_key,
                                "ConditionExpression": "attribute_exists(user_uuid)"}},
            {"Delete": {"TableName": self.t["one_time_tokens"], "Key": challenge_key,
                        "ConditionExpression": "attribute_exists(token_digest)"}}]
        if previous:
            items += [
                {"Update": {"TableName": self.t["sessions"], "Key": {"session_id": _s(previous)},
                            "UpdateExpression": "SET #s = :revoked", "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":revoked": _s("revoked")}}},
                {"Put": {"TableName": self.t["security_events"], "Item": {
                    "feed": _s("feed"), "seq": _s(f"{now}-{uuid.uuid4().hex}"), "session_id": _s(previous)}}}]
        items.append({"Put": {"TableName": self.t["login_history"], "Item": {
            **user_key, "event_key": _s(f"{time.time_ns()}"), "result": _s("success"), "ip": _s(ip)}}})
        self.db.transact_write_items(TransactItems=items)
        return tokens

    def refresh(self, refresh_token: str) -> dict | None:
        """One write: the token carries its user and device under its MAC, and the write's
        condition checks that it is the session's current one."""
        session_id, generation, carried, mac = refresh_token.split(".")
        if not hmac.compare_digest(mac, self._mac(session_id, int(generation), carried)):
            return None
        user_uuid, device_id = carried.split("~")
        now = int(time.time())
        tokens, digest = self._tokens(user_uuid, session_id, int(generation) + 1, device_id)
        try:
            self.db.transact_write_items(TransactItems=[
                {"Update": {"TableName": self.t["sessions"], "Key": {"session_id": _s(session_id)},
                            "UpdateExpression": ("SET refresh_gen = :next, refresh_digest = :new, "
                                                 "last_seen_epoch = :now"),
                            "ConditionExpression": "refresh_gen = :gen AND refresh_digest = :old AND #s = :active",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":next": _n(int(generation) + 1), ":gen": _n(int(generation)),
                                                          ":new": _s(digest), ":old": _s(_digest(refresh_token)),
                                                          ":now": _n(now), ":active": _s("active")}}},
                {"Update": {"TableName": self.t["presence"], "Key": {"user_uuid": _s(user_uuid)},
                            "UpdateExpression": "SET entries.#d.last_seen_epoch = :now",
                            "ConditionExpression": "entries.#d.session_id = :sid",
                            "ExpressionAttributeNames": {"#d": device_id},
                            "ExpressionAttributeValues": {":now": _n(now), ":sid": _s(session_id)}}}])
        except ClientError:  # not the current token, or the session ended
            return None
        return tokens

    def me(self, authorization: str) -> dict | None:
        try:
            claims = jwt.decode(authorization.removeprefix("Bearer "), self.jwt_public, algorithms=["EdDSA"],
                                issuer=ISSUER, audience=AUDIENCE)
        except jwt.PyJWTError:
            return None
        session = self.db.get_item(TableName=self.t["sessions"], Key={"session_id": _s(claims["sid"])},
                                   ConsistentRead=True).get("Item")
        if not session or session["status"]["S"] != "active":
            return None
        return {"user_uuid": claims["sub"], "session_id": claims["sid"], "device_id": session["device_id"]["S"]}

    def _mac(self, session_id: str, generation: int, carried: str) -> str:
        return hmac.new(self.secret, f"refresh:{session_id}:{generation}:{carried}".encode(),
                        hashlib.sha256).hexdigest()

    def _tokens(self, user_uuid: str, session_id: str, generation: int, device_id: str) -> tuple[dict, str]:
        """The pair (one EdDSA signature) and the refresh token's digest to store."""
        now = int(time.time())
        access = jwt.encode({"sub": user_uuid, "sid": session_id, "iat": now, "exp": now + ACCESS_TTL,
                             "iss": ISSUER, "aud": AUDIENCE}, self.jwt_key, algorithm="EdDSA")
        carried = f"{user_uuid}~{device_id}"
        refresh = f"{session_id}.{generation}.{carried}.{self._mac(session_id, generation, carried)}"
        return ({"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
                 "expires_in": ACCESS_TTL}, _digest(refresh))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create_app(config: dict | None = None) -> Flask:
    """config (tests) or the environment: endpoint_url, table_prefix, secret (hex), argon2 (dict)."""
    config = config or {"endpoint_url": os.environ.get("CITYLOGIN_DYNAMODB_ENDPOINT_URL"),
                        "table_prefix": os.environ.get("CITYLOGIN_TABLE_PREFIX", ""),
                        "secret": os.environ["FLOOR_SECRET"]}
    defaults = Settings()
    argon2_params = config.get("argon2") or {"time_cost": defaults.argon2_time_cost,
                                             "memory_cost": defaults.argon2_memory_cost,
                                             "parallelism": defaults.argon2_parallelism}
    floor = Floor(endpoint_url=config["endpoint_url"], prefix=config["table_prefix"],
                  secret=bytes.fromhex(config["secret"]), argon2_params=argon2_params)
    app = Flask("floor")
    app.extensions["floor"] = floor
    refused = ({"code": "refused"}, 401)

    @app.get("/readyz")
    def ready():
        return {"status": "ok"}

    @app.post("/floor/users")
    def create_user():
        body = request.get_json()
        floor.create_user(body["username"], body["password"], body["client_cert"])
        return {}, 201

    @app.post("/login/challenge")
    def challenge():
        return {"challenge": floor.challenge(request.remote_addr or "unknown"), "expires_in": CHALLENGE_TTL}, 201

    @app.post("/login/")
    def login():
        tokens = floor.login(request.get_json(), request.remote_addr or "unknown")
        return jsonify(tokens) if tokens else refused

    @app.post("/session/refresh")
    def refresh():
        tokens = floor.refresh(request.get_json()["refresh_token"])
        return jsonify(tokens) if tokens else refused

    @app.get("/session/me")
    def me():
        found = floor.me(request.headers.get("Authorization", ""))
        return jsonify(found) if found else refused

    return app

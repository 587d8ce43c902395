"""A small real SSF transmitter for the guard's tests, in a thread on 127.0.0.1: citylogin's
ssf-configuration, JWKS, /ssf/poll (RFC 8936, long poll and acks) and /session/introspect, with
access tokens and SETs signed by a test Ed25519 key."""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
GRANT_CLAIM = "citylogin_grant_id"


@dataclass
class Signer:
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwk(self) -> dict[str, Any]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "EdDSA"}

    def sign(self, claims: dict[str, Any], *, typ: str, **header: Any) -> str:
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid, "typ": typ, **header})


class Transmitter:
    """citylogin as the guard sees it. Knobs: `poll_status` (answer polls with it instead of 200),
    `jwks_status` (answer JWKS reads with it instead of 200),
    `hold` (longest long poll), `introspection_extra` (members an active answer gets on top of the
    token's claims), `hang()` (from then on, answer nothing); records: `polls` (each poll's JSON
    body), `holding`, `acked`, `introspections`, `jwks_reads`, `hung` (the paths of the requests
    held unanswered)."""

    def __init__(self, *, client_id: str = "app-test", client_secret: str = "app-secret", token_ttl: int = 300,
                 hold: float = 30.0) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.token_ttl, self.hold = token_ttl, hold
        self.signer = Signer()
        self.published = [self.signer]
        self.poll_status = 200
        self.jwks_status = 200
        self.hung: list[str] = []
        self._hanging = False
        self._stopped = threading.Event()
        self.introspection_extra: dict[str, Any] = {}
        self.polls: list[dict[str, Any]] = []
        self.acked: set[str] = set()
        self.introspections = 0
        self.jwks_reads = 0
        self.streams_made = 0
        self.holding = 0  # long polls being held now
        self.revoked: set[str] = set()
        self._pending: dict[str, str] = {}  # jti -> SET, in order, until acked
        self._changed = threading.Condition()
        self._closing = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    # What a test does.

    def access_token(self, *, session_id: str | None = None, signer: Signer | None = None, typ: str = "at+jwt",
                     expires_in: float | None = None, **claims: Any) -> str:
        now = int(time.time())
        # iat to the microsecond (a NumericDate may have a fraction: RFC 7519 §2), to compare it with
        # when the guard started listening
        body = {"iss": self.url, "aud": "citylogin", "sub": "user-" + uuid.uuid4().hex[:8],
                "sid": session_id or uuid.uuid4().hex, "did": "device-" + uuid.uuid4().hex[:8],
                "jti": uuid.uuid4().hex, "iat": round(time.time(), 6), "nbf": now,
                "exp": now + int(self.token_ttl if expires_in is None else expires_in), **claims}
        return (signer or self.signer).sign(body, typ=typ)

    def revoke(self, session_id: str, *, reason: str = "logged_out", event_timestamp: float | None = None,
               signer: Signer | None = None, grant_id: Any = None, **overrides: Any) -> str:
        """Ends the session: introspection says inactive and a session-revoked SET is queued. With
        `grant_id`, the SET ends only the app's grant on the session (citylogin_grant_id), which goes on."""
        jti = uuid.uuid4().hex
        subject = {"format": "complex", "session": {"format": "opaque", "id": session_id},
                   "user": {"format": "opaque", "id": "u"}, "device": {"format": "opaque", "id": "d"}}
        event = {"subject": subject, "event_timestamp": int(event_timestamp or time.time()),
                 "initiating_entity": "user", "reason_admin": {"en": reason}}
        if grant_id is not None:
            event[GRANT_CLAIM] = grant_id
        claims = {"iss": self.url, "aud": self.client_id, "jti": jti, "iat": int(time.time()),
                  "events": {SESSION_REVOKED: event}, **overrides}
        with self._changed:
            if grant_id is None:
                self.revoked.add(session_id)
            self._pending[jti] = (signer or self.signer).sign(claims, typ="secevent+jwt")
            self._changed.notify_all()
        return jti

    def pending(self) -> list[str]:
        with self._changed:
            return list(self._pending)

    def hang(self) -> None:
        """citylogin hung: it goes on accepting connections and reading requests, and answers none (each
        held until stop()). A long poll held already is answered when its hold ends, as before."""
        self._hanging = True

    def hung_on(self, path: str) -> int:
        """How many requests for `path` were held unanswered."""
        return sum(1 for held in list(self.hung) if held == path)

    def stop(self) -> None:
        self._stopped.set()
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # What the server does.

    def holds(self, path: str) -> bool:
        """Whether the request for `path` goes unanswered; if so, returns only at stop()."""
        if not self._hanging:
            return False
        self.hung.append(path)
        self._stopped.wait()
        return True

    def configuration(self) -> dict[str, Any]:
        return {"spec_version": "1_0", "issuer": self.url, "jwks_uri": f"{self.url}/.well-known/jwks.json",
                "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
                "poll_endpoint": f"{self.url}/ssf/poll", "configuration_endpoint": f"{self.url}/ssf/streams",
                "citylogin_access_token_ttl": self.token_ttl}

    def poll(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.polls.append(body)
        if self.poll_status != 200:
            return self.poll_status, {"error": "unavailable"}
        limit = int(body.get("maxEvents", 100))
        deadline = time.monotonic() + self.hold
        with self._changed:
            for jti in body.get("ack", []):
                self.acked.add(jti)
                self._pending.pop(jti, None)
            if body.get("returnImmediately", True) is False:
                self.holding += 1
                self._changed.wait_for(lambda: self._pending or self._closing, timeout=deadline - time.monotonic())
                self.holding -= 1
            jtis = list(self._pending)
            return 200, {"sets": {j: self._pending[j] for j in jtis[:limit]}, "moreAvailable": len(jtis) > limit}

    def introspect(self, token: str) -> dict[str, Any]:
        self.introspections += 1
        try:
            claims = jwt.decode(token, self.signer.key.public_key(), algorithms=["EdDSA"], audience="citylogin")
        except jwt.InvalidTokenError:
            return {"active": False}
        if claims["sid"] in self.revoked:
            return {"active": False}
        token_type = "DPoP" if "cnf" in claims else "Bearer"
        return {"active": True, "token_type": token_type, "client_id": self.client_id, **claims,
                **self.introspection_extra}

    def app_authenticated(self, authorization: str | None) -> bool:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return authorization == f"Basic {expected}"


def _handler(transmitter: Transmitter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def parse_request(self) -> bool:
            # A stopped transmitter is down: a kept-alive connection's next request (the server's
            # shutdown() stops only new connections) is closed unanswered, as a dead citylogin's would be.
            if not super().parse_request():
                return False
            if transmitter._stopped.is_set():
                self.close_connection = True
                return False
            return True

        def do_GET(self) -> None:
            if transmitter.holds(self.path):
                return
            if self.path == "/.well-known/ssf-configuration":
                self._answer(200, transmitter.configuration())
            elif self.path == "/.well-known/jwks.json":
                transmitter.jwks_reads += 1
                if transmitter.jwks_status != 200:
                    self._answer(transmitter.jwks_status, {"error": "unavailable"})
                else:
                    self._answer(200, {"keys": [signer.jwk() for signer in transmitter.published]})
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if transmitter.holds(self.path):
                return
            if not transmitter.app_authenticated(self.headers.get("Authorization")):
                self._answer(401, {"error": "invalid_client"})
            elif self.path == "/ssf/streams":  # one queue for every receiver: a stream names it
                transmitter.streams_made += 1
                poll = {"method": "urn:ietf:rfc:8936", "endpoint_url": f"{transmitter.url}/ssf/poll"}
                self._answer(201, {"stream_id": f"s{transmitter.streams_made}", "delivery": poll})
            elif self.path == "/ssf/poll":
                self._answer(*transmitter.poll(json.loads(body or b"{}")))
            elif self.path == "/session/introspect":
                token = parse_qs(body.decode()).get("token", [""])[0]
                self._answer(200, transmitter.introspect(token))
            else:
                self._answer(404, {"error": "not_found"})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a long poll the guard cut

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

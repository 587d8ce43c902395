"""The guard's cost per request, in-process: Guard.verify() p50/p99 for a token seen before (the
steady state: a dict lookup, the exp and the ended sessions) and for tokens never seen (a full
Ed25519 signature check each). Goal (issue 18): p50 <= 50 us. Not a test.

    .venv/bin/python bench/guard.py [--calls 100000] [--tokens 5000]

It serves the guard a minimal transmitter on 127.0.0.1 (ssf-configuration, JWKS, a quiet long
poll), so the feed is heard and no call leaves the process per request."""
from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from citylogin_guard import Guard

GOAL_P50_US = 50.0


class QuietTransmitter:
    def __init__(self) -> None:
        self.key, self.kid = Ed25519PrivateKey.generate(), "bench"
        self.introspections = 0
        jwk = {**json.loads(OKPAlgorithm.to_jwk(self.key.public_key())), "kid": self.kid, "use": "sig"}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self, jwk))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def token(self) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": "citylogin", "sub": uuid.uuid4().hex, "sid": uuid.uuid4().hex,
                  "did": uuid.uuid4().hex, "jti": uuid.uuid4().hex, "iat": time.time(), "nbf": now, "exp": now + 900}
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid, "typ": "at+jwt"})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(transmitter: QuietTransmitter, jwk: dict) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/jwks.json":
                self._answer({"keys": [jwk]})
            else:
                self._answer({"issuer": transmitter.url, "jwks_uri": f"{transmitter.url}/.well-known/jwks.json",
                              "poll_endpoint": f"{transmitter.url}/ssf/poll", "citylogin_access_token_ttl": 900})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/session/introspect":  # never, in steady state: counted to show it
                transmitter.introspections += 1
                self._answer({"active": True})
                return
            if json.loads(body).get("returnImmediately") is False:
                time.sleep(30)
            self._answer({"sets": {}, "moreAvailable": False})

        def _answer(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                pass

        def log_message(self, format: str, *args: object) -> None:
            pass
    return Handler


def percentiles_us(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def timed(guard: Guard, headers: list[str]) -> list[int]:
    samples = []
    clock, verify = time.perf_counter_ns, guard.verify
    for header in headers:
        start = clock()
        verify(header)
        samples.append(clock() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000, help="verify() calls with one token seen before")
    parser.add_argument("--tokens", type=int, default=5_000, help="distinct tokens, each verified once")
    options = parser.parse_args()
    transmitter = QuietTransmitter()
    try:
        # One host, one clock: a small leeway, so that tokens issued a second after the guard first
        # heard the feed are trusted to it alone (earlier ones are introspected, see README).
        with Guard(transmitter.url, "bench", "bench-secret", leeway=0.5) as guard:
            while not guard.heard():
                time.sleep(0.01)
            time.sleep(1.0)
            seen = f"Bearer {transmitter.token()}"
            guard.verify(seen)
            rows = [("token seen before", percentiles_us(timed(guard, [seen] * options.calls)), options.calls),
                    ("token never seen", percentiles_us(timed(guard, [f"Bearer {transmitter.token()}"
                                                                      for _ in range(options.tokens)])),
                     options.tokens)]
    finally:
        transmitter.stop()
    print(f"{'Guard.verify()':<20} {'calls':>8} {'p50 us':>8} {'p99 us':>8}")
    for name, (p50, p99), calls in rows:
        print(f"{name:<20} {calls:>8} {p50:>8.1f} {p99:>8.1f}")
    print(f"introspection calls during the runs: {transmitter.introspections}")
    p50 = rows[0][1][0]
    verdict = "MET" if p50 <= GOAL_P50_US else "MISSED"
    print(f"goal: p50 <= {GOAL_P50_US:.0f} us in steady state: {verdict} ({p50:.1f} us)")


if __name__ == "__main__":
    main()

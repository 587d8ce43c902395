"""Temporary AWS credentials as AWS hands them out, and a DynamoDB that checks them, all on 127.0.0.1.

Why: DynamoDB Local accepts any signature, so against it the lean client (common/database/dynamo_client.py)
could sign with stale keys, a wrong secret or a wrong time and never know. Here a `KeyIssuer`
rotates generations of temporary keys; botocore's own credential providers fetch them from the fake
ECS container endpoint (`ContainerCredentials`) or from a fake STS after reading a rotating web
identity token file (`WebIdentity`, as on EKS); and `CheckingFront`, in front of DynamoDB Local,
verifies each request's SigV4 with botocore's `SigV4Auth` for the presented key, refusing what
Amazon DynamoDB refuses, with its codes, messages and Date header.

Timing: botocore (credentials.py, RefreshableCredentials) refreshes in the background once less than
15 minutes (ADVISORY) are left and blocks every caller once less than 10 (MANDATORY). A generation
ending at rotation r + LEAD carries Expiration = r + LEAD + `expires_after`: with ADVISORY, botocore
refreshes LEAD seconds after the rotation, once per generation (never on every call), and the token
file is already the new one when it reads it; with MANDATORY, a failed refresh after that moment is
raised to the caller (in between, every call tries an advisory refresh). Rotations fall on whole
seconds minus LEAD, so that the Expiration, written in whole seconds as AWS writes it, is exact.

An advisory refresh is one thread's: a thread that finds it under way signs with the keys botocore
holds, for as long as that refresh takes (on a loaded machine, measured: 2.7 s, past the next rotation).
AWS accepts those keys until their Expiration; botocore stops handing them out only at its mandatory
moment, Expiration - MANDATORY. A front that refuses a key one rotation after the next (the default,
so that a client that never refreshes is caught within seconds) refuses them then: a front that stands
in for AWS under a whole server (`keeps_rotated_keys`) accepts a rotated key until that moment."""
from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import http.client
import json
import math
import os
import secrets
import socket
import string
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Self
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials

# botocore's refresh windows (credentials.py, RefreshableCredentials): 15 and 10 minutes
ADVISORY: int = vars(RefreshableCredentials)["_advisory_refresh_timeout"]
MANDATORY: int = vars(RefreshableCredentials)["_mandatory_refresh_timeout"]
LEAD = 0.5            # a generation starts this long before botocore must fetch it
MAX_SKEW = 300        # DynamoDB refuses a request signed more than 5 min from its clock
NEVER_ROTATING = 6 * 3600  # the lifetime of keys that never rotate (an ECS task role's, about)
ROLE_ARN = "arn:aws:iam::123456789012:role/citylogin"
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your "
                      "AWS Secret Access Key and signing method. Consult the service documentation for details.")


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _amz_date(moment: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(moment))


@dataclass(frozen=True)
class Generation:
    """One set of temporary keys, and the web identity token that is current with it."""
    number: int
    access_key: str
    secret_key: str
    token: str
    web_identity_token: str
    expiration: float  # whole seconds

    @property
    def expiration_text(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expiration))

    def credentials(self) -> Credentials:
        return Credentials(self.access_key, self.secret_key, self.token)

    def secrets(self) -> tuple[str, str, str]:
        """What must never appear in a log."""
        return self.secret_key, self.token, self.web_identity_token


class KeyIssuer:
    """A new Generation every `rotate_every` whole seconds (None: one that never rotates), all past
    ones remembered. It rotates on time in a thread of its own, and late on any call of current()."""

    def __init__(self, rotate_every: int | None = 2, *, expires_after: float = ADVISORY) -> None:
        assert rotate_every is None or (rotate_every == int(rotate_every) and rotate_every >= 1)
        self.rotate_every, self.expires_after = rotate_every, expires_after
        self._base = math.ceil(time.time())
        self._lock = threading.Lock()
        self._generations: list[Generation] = []
        self._by_key: dict[str, Generation] = {}
        self._listeners: list[Callable[[Generation], None]] = []
        self._stop = threading.Event()
        self.current()
        if rotate_every is not None:
            threading.Thread(target=self._rotate_on_time, daemon=True).start()

    def current(self) -> Generation:
        with self._lock:
            due = self._due_number(time.time())
            while len(self._generations) <= due:
                self._issue(len(self._generations))
            return self._generations[-1]

    def generation_of(self, access_key: str) -> Generation | None:
        return self._by_key.get(access_key)

    def generation_of_number(self, number: int) -> Generation:
        with self._lock:
            return self._generations[number]

    def all_secrets(self) -> list[str]:
        with self._lock:
            return [s for g in self._generations for s in g.secrets()]

    def on_rotation(self, listener: Callable[[Generation], None]) -> None:
        """Call `listener(generation)` now with the current one and under the lock at each rotation."""
        with self._lock:
            self._listeners.append(listener)
            listener(self._generations[-1])

    def refresh_due(self, number: int | None = None) -> float:
        """When botocore holding generation `number` (the current one) must fetch the next."""
        assert self.rotate_every is not None
        number = self.current().number if number is None else number
        return self._base + (number + 1) * self.rotate_every

    def wait_until_refreshed(self, margin: float = 0.3) -> Generation:
        """Wait until botocore must hold the current generation (its refresh moment is `margin`
        past) and it has at least `margin` left before the next rotation; return it."""
        assert self.rotate_every is not None
        while True:
            now, generation = time.time(), self.current()
            refreshed_at = self.refresh_due(generation.number - 1) if generation.number else 0.0
            next_rotation = self.refresh_due(generation.number) - LEAD
            if refreshed_at + margin <= now <= next_rotation - margin:
                return generation
            # not yet refreshed: until it is; too near the next rotation: until that one is refreshed
            until = refreshed_at + margin if now < refreshed_at + margin else next_rotation + LEAD + margin
            time.sleep(max(0.01, until - now))

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _due_number(self, now: float) -> int:
        if self.rotate_every is None:
            return 0
        return max(0, math.floor((now - (self._base - LEAD)) / self.rotate_every))

    def _issue(self, number: int) -> None:
        if self.rotate_every is None:
            expiration = float(math.floor(time.time()) + NEVER_ROTATING)
        else:
            expiration = self._base + (number + 1) * self.rotate_every + self.expires_after
        generation = Generation(
            number=number, access_key="ASIA" + _random(string.ascii_uppercase + string.digits, 16),
            secret_key=_random(string.ascii_letters + string.digits + "+/", 40),
            token=base64.b64encode(secrets.token_bytes(96)).decode(),
            web_identity_token=".".join(base64.urlsafe_b64encode(secrets.token_bytes(n)).decode().rstrip("=")
                                        for n in (24, 96, 64)),
            expiration=expiration)
        self._generations.append(generation)
        self._by_key[generation.access_key] = generation
        for listener in self._listeners:
            listener(generation)

    def _rotate_on_time(self) -> None:
        assert self.rotate_every is not None
        while not self._stop.is_set():
            number = self.current().number
            next_rotation = self._base + (number + 1) * self.rotate_every - LEAD
            self._stop.wait(max(0.0, next_rotation - time.time()))
            self.current()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers, then body: no delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def answer(self, status: int, content: bytes, headers: dict[str, str], *, date: float | None = None) -> None:
        self.send_response_only(status)
        if date is not None:
            self.send_header("Date", formatdate(date, usegmt=True))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


class _Served:
    """An HTTP server on 127.0.0.1 in a daemon thread, as a context manager."""

    def __init__(self, handler: type[_Handler]) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.lock = threading.Lock()
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ContainerCredentials(_Served):
    """The ECS container credentials endpoint (botocore's ContainerProvider, over
    AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN): each GET answers the
    issuer's current generation. `failing = True` makes it answer 500, as an agent in trouble does."""

    def __init__(self, issuer: KeyIssuer, *, authorization: str | None = None) -> None:
        self.issuer, self.failing, self.fetches, self.refused = issuer, False, 0, 0
        # botocore reads AWS_CONTAINER_AUTHORIZATION_TOKEN from the environment at every fetch
        self.authorization = authorization or secrets.token_urlsafe(24)
        super().__init__(_ContainerHandler)
        self.url = f"{self.base_url}/v2/credentials/{uuid.uuid4()}"

    def environment(self) -> dict[str, str]:
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url, "AWS_CONTAINER_AUTHORIZATION_TOKEN": self.authorization}


class _ContainerHandler(_Handler):
    def do_GET(self) -> None:
        endpoint: ContainerCredentials = self.server.owner  # type: ignore[attr-defined]
        if endpoint.failing or self.path != urlsplit(endpoint.url).path \
                or self.headers.get("Authorization") != endpoint.authorization:
            with endpoint.lock:
                endpoint.refused += 1
            status = 500 if endpoint.failing else 403
            self.answer(status, b'{"code":"InternalServerError","message":"unavailable"}' if endpoint.failing
                        else b'{"code":"AccessDeniedException","message":"not authorized"}',
                        {"Content-Type": "application/json"}, date=time.time())
            return
        generation = endpoint.issuer.current()
        with endpoint.lock:
            endpoint.fetches += 1
        document = {"RoleArn": ROLE_ARN, "AccessKeyId": generation.access_key,
                    "SecretAccessKey": generation.secret_key, "Token": generation.token,
                    "Expiration": generation.expiration_text}
        self.answer(200, json.dumps(document).encode(), {"Content-Type": "application/json"}, date=time.time())


class WebIdentity(_Served):
    """IAM roles for service accounts (EKS): the token file the kubelet rewrites at each rotation,
    and STS's AssumeRoleWithWebIdentity (query protocol, XML), answered only for the token in the
    file: botocore's AssumeRoleWithWebIdentityProvider reaches it over AWS_ENDPOINT_URL_STS."""

    def __init__(self, issuer: KeyIssuer, token_dir: Path) -> None:
        self.issuer, self.calls = issuer, 0
        self.refusals: Counter[str] = Counter()
        self.token_file = token_dir / "web-identity-token"
        super().__init__(_StsHandler)
        issuer.on_rotation(self._project)

    def environment(self) -> dict[str, str]:
        return {"AWS_ROLE_ARN": ROLE_ARN, "AWS_WEB_IDENTITY_TOKEN_FILE": str(self.token_file),
                "AWS_ENDPOINT_URL_STS": self.base_url, "AWS_ROLE_SESSION_NAME": "citylogin"}

    def _project(self, generation: Generation) -> None:
        # Written whole, then renamed over the old one: a reader never sees half a token.
        partial = self.token_file.with_suffix(".new")
        partial.write_text(generation.web_identity_token)
        os.replace(partial, self.token_file)


class _StsHandler(_Handler):
    NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

    def do_POST(self) -> None:
        sts: WebIdentity = self.server.owner  # type: ignore[attr-defined]
        form = {name: values[0] for name, values in parse_qs(self.body().decode()).items()}
        current = sts.issuer.current()
        refusal = self._refusal(sts, form, current)
        with sts.lock:
            sts.calls += 1
            if refusal:
                sts.refusals[refusal[0]] += 1
        if refusal:
            code, message = refusal
            self._xml(400, f"<ErrorResponse xmlns=\"{self.NAMESPACE}\"><Error><Type>Sender</Type><Code>{code}</Code>"
                           f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId>"
                           "</ErrorResponse>")
            return
        session = form.get("RoleSessionName", "session")
        self._xml(200, f"<AssumeRoleWithWebIdentityResponse xmlns=\"{self.NAMESPACE}\">"
                       "<AssumeRoleWithWebIdentityResult>"
                       "<SubjectFromWebIdentityToken>system:serviceaccount:citylogin:citylogin"
                       "</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience>"
                       f"<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/citylogin/{escape(session)}</Arn>"
                       f"<AssumedRoleId>AROA{current.number:016d}:{escape(session)}</AssumedRoleId></AssumedRoleUser>"
                       f"<Credentials><AccessKeyId>{current.access_key}</AccessKeyId>"
                       f"<SecretAccessKey>{escape(current.secret_key)}</SecretAccessKey>"
                       f"<SessionToken>{escape(current.token)}</SessionToken>"
                       f"<Expiration>{current.expiration_text}</Expiration></Credentials>"
                       "<Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>"
                       "</AssumeRoleWithWebIdentityResult>"
                       f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                       "</AssumeRoleWithWebIdentityResponse>")

    @staticmethod
    def _refusal(sts: WebIdentity, form: dict[str, str], current: Generation) -> tuple[str, str] | None:
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
            return "InvalidAction", "Could not find operation"
        if form.get("RoleArn") != ROLE_ARN:
            return "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
        if form.get("WebIdentityToken") != current.web_identity_token:
            return "InvalidIdentityToken", "The web identity token is not the current one"
        return None

    def _xml(self, status: int, document: str) -> None:
        self.answer(status, document.encode(), {"Content-Type": "text/xml", "x-amzn-RequestId": str(uuid.uuid4())},
                    date=time.time())


class CheckingFront(_Served):
    """DynamoDB's authentication in front of DynamoDB Local: SigV4 verified with botocore's
    SigV4Auth for the presented key's secret, the session token, the generation (the current or the
    previous one: AWS keeps a rotated key valid until it expires; with `keeps_rotated_keys`, any whose
    botocore mandatory refresh moment has not come, see the module's docstring), X-Amz-Date within 5
    minutes of `clock`. A refusal is DynamoDB's (400, its code and message, a Date unless `send_date`
    is off); anything accepted goes upstream unchanged. Counts accepted requests per generation and
    refusals per code."""

    def __init__(self, upstream_url: str, issuer: KeyIssuer, *, region: str = "us-east-1",
                 keeps_rotated_keys: bool = False) -> None:
        self.upstream, self.issuer, self.region = urlsplit(upstream_url), issuer, region
        self.keeps_rotated_keys = keeps_rotated_keys
        self.clock: Callable[[], float] = time.time
        self.send_date = True
        self.accepted: Counter[int] = Counter()
        self.refusals: Counter[str] = Counter()
        self.last_generation: int | None = None
        self.last_refusal: tuple[str, str] | None = None  # (code, message)
        super().__init__(_FrontHandler)
        self.url = self.base_url

    @property
    def generations_seen(self) -> list[int]:
        return sorted(self.accepted)

    def reset_counts(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.refusals.clear()
            self.last_generation = self.last_refusal = None

    def check(self, headers: Any, body: bytes, now: float) -> tuple[str, str] | Generation:
        """The generation that signed the request, or DynamoDB's (code, message) refusal."""
        authorization = headers.get("Authorization", "")
        if not authorization:
            return "MissingAuthenticationTokenException", "Request is missing Authentication Token"
        try:
            algorithm, fields = authorization.split(" ", 1)
            parts = dict(part.strip().split("=", 1) for part in fields.split(","))
            access_key, day, region, service, terminal = parts["Credential"].split("/")
            signed, signature = parts["SignedHeaders"].split(";"), parts["Signature"]
        except (KeyError, ValueError):
            return "IncompleteSignatureException", f"Authorization header requires 'Credential', 'Signature' and " \
                                                   f"'SignedHeaders' parameters. Authorization={authorization[:40]}"
        stamp = headers.get("X-Amz-Date", "")
        if algorithm != "AWS4-HMAC-SHA256" or "host" not in signed or "x-amz-date" not in signed \
                or (service, terminal) != ("dynamodb", "aws4_request") or not stamp.startswith(day):
            return "IncompleteSignatureException", "The request signature is not a valid SigV4 for DynamoDB"
        if region != self.region:
            return "InvalidSignatureException", f"Credential should be scoped to a valid region, not '{region}'."
        generation = self.issuer.generation_of(access_key)
        if generation is None:
            return "UnrecognizedClientException", "The security token included in the request is invalid."
        if generation.number < self.issuer.current().number - 1 and not self._kept(generation, now):
            return "ExpiredTokenException", "The security token included in the request is expired"
        if headers.get("X-Amz-Security-Token") != generation.token:
            return "UnrecognizedClientException", "The security token included in the request is invalid."
        skew = _skew_refusal(stamp, now)
        if skew:
            return "InvalidSignatureException", skew
        request = AWSRequest(method="POST", url=f"http://{headers.get('Host', '')}/", data=body,
                             headers={name: value for name, value in headers.items() if name.lower() in signed})
        request.context["timestamp"] = stamp
        signer = SigV4Auth(generation.credentials(), "dynamodb", region)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, signature):
            return "InvalidSignatureException", SIGNATURE_MISMATCH
        return generation

    def _kept(self, generation: Generation, now: float) -> bool:
        """A rotated key botocore may still sign with: its mandatory refresh moment has not come."""
        return self.keeps_rotated_keys and now < generation.expiration - MANDATORY


def _skew_refusal(stamp: str, now: float) -> str | None:
    try:
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return f"Date must be in ISO-8601 'basic format'. Got '{stamp}'."
    if signed_at < now - MAX_SKEW:
        return (f"Signature expired: {stamp} is now earlier than {_amz_date(now - MAX_SKEW)} "
                f"({_amz_date(now)} - 5 min.)")
    if signed_at > now + MAX_SKEW:
        return (f"Signature not yet current: {stamp} is still later than {_amz_date(now + MAX_SKEW)} "
                f"({_amz_date(now)} + 5 min.)")
    return None


class _FrontHandler(_Handler):
    upstream: http.client.HTTPConnection | None = None  # one keep-alive connection per client connection

    def do_POST(self) -> None:
        front: CheckingFront = self.server.owner  # type: ignore[attr-defined]
        body, now = self.body(), front.clock()
        verdict = front.check(self.headers, body, now)
        if isinstance(verdict, tuple):
            with front.lock:
                front.refusals[verdict[0]] += 1
                front.last_refusal = verdict
            content = json.dumps({"__type": f"com.amazon.coral.service#{verdict[0]}", "message": verdict[1]}).encode()
            self.answer(400, content, {"Content-Type": "application/x-amz-json-1.0",
                                       "x-amzn-RequestId": _request_id(), "x-amz-crc32": str(zlib.crc32(content))},
                        date=now if front.send_date else None)
            return
        with front.lock:
            front.accepted[verdict.number] += 1
            front.last_generation = verdict.number
        status, headers, content = self._forward(front, body)
        self.answer(status, content, headers, date=now)

    def _forward(self, front: CheckingFront, body: bytes) -> tuple[int, dict[str, str], bytes]:
        for attempt in (1, 2):  # a kept connection DynamoDB Local closed meanwhile: once more on a new one
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(front.upstream.netloc, timeout=30)
            try:
                self.upstream.request("POST", self.path, body=body, headers=dict(self.headers.items()))
                response = self.upstream.getresponse()
                content = response.read()
            except (http.client.HTTPException, OSError):
                self.upstream.close()
                self.upstream = None
                if attempt == 2:
                    raise
                continue
            skip = {"content-length", "connection", "transfer-encoding", "date", "server", "keep-alive"}
            return response.status, {k: v for k, v in response.getheaders() if k.lower() not in skip}, content
        raise AssertionError("unreachable")

    def finish(self) -> None:
        super().finish()
        if self.upstream is not None:
            self.upstream.close()


def _request_id() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:52].upper()


def chain_environment(config_dir: Path, **provider: str) -> dict[str, str]:
    """The environment of a process whose credential chain holds only `provider`'s variables: no
    AWS_* of the developer's, empty config and credentials files, no instance metadata."""
    empty = config_dir / "empty-aws-config"
    empty.write_text("")
    return {"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
            "AWS_EC2_METADATA_DISABLED": "true", **provider}

"""The protections citylogin's tests hold for its gunicorn worker, checked at a candidate behind nginx
(bench/nginx_front.py, for bench/server_choice.py, issue 87): whatever keeps each one, the server or the
nginx in front, the client at nginx's address must see it kept. Each check names the test that holds the
protection for citylogin's worker (PROTECTIONS), and says pass or fail with what it saw.

The clients are raw TLS sockets (the template's TLS), read together with poll(): SLOW_CLIENTS slow request
heads and as many slow bodies, trickling for TRICKLE_S and then silent (each must hold no server thread,
and be cut), IDLE connections that send nothing, STREAMS open event streams (the server's threads counted
meanwhile), a body over the app's 64 KiB limit (within nginx's 128k), a malformed head, and a bad setting
at the server's start."""
from __future__ import annotations

import base64
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import requests

from bench.cpu import _process_table, tree_pids
from bench.nginx_front import Deployment, server_command, stop_tree
from bench.servers import METRICS_TOKEN, PROJECT_ROOT, VENV_BIN
from citylogin.client.api import Client
from common.database.dynamodb_local import free_port

SLOW_CLIENTS, IDLE, STREAMS = 200, 1000, 300
TRICKLE_S = 3.0
CUT_WITHIN_S = 75.0  # nginx's client_header_timeout and client_body_timeout are 60 s (its defaults)
ANSWER_WITHIN_S = 5.0
STREAM_DEADLINE_S = 60.0
START_DEADLINE_S = 60.0
DEAD_WORKER_STREAMS = 10
STOP_DEADLINE_S = 20.0  # tests/citylogin/server/test_stop_with_held_polls.py's: far below a held poll's 30 s
TESTS = "tests/citylogin/server/"
PROTECTIONS = {
    "slow head": ("200 slow request heads hold no server thread (/healthz answered) and are cut",
                  TESTS + "test_gunicorn_slow_clients.py::test_five_hundred_idle_streams_and_three_hundred_slow_"
                  "sockets_leave_healthz_answering"),
    "slow body": ("200 slow request bodies hold no server thread (/healthz answered) and are cut",
                  TESTS + "test_gunicorn_static_answers.py::test_an_answer_from_the_loop_needs_no_thread"),
    "idle connections": (f"{IDLE} connections that send nothing, then a request answered",
                         TESTS + "test_gunicorn_slow_clients.py::test_five_hundred_idle_streams_and_three_hundred_"
                         "slow_sockets_leave_healthz_answering"),
    "open streams": (f"{STREAMS} open event streams all answered, then a request answered",
                     TESTS + "test_parked_streams.py::test_three_hundred_streams_on_four_threads_all_beat_and_all_"
                     "hear_the_end"),
    "body over 64 KiB": ("a 100 KiB body: 413 problem+json payload_too_large, the connection still usable",
                         TESTS + "test_gunicorn_body_limit.py::test_too_large_body_then_next_request_on_the_same_"
                         "session"),
    "malformed head": ("a request line with a control character: a 4xx",
                       TESTS + "test_gunicorn_slow_clients.py::test_what_the_parser_refuses_is_a_problem_document"),
    "held poll at stop": ("SIGTERM with an RFC 8936 long poll held: the poll answered at once, a clean exit",
                          TESTS + "test_stop_with_held_polls.py::test_sigterm_answers_a_held_long_poll_at_once_and_"
                          "serve_exits_cleanly"),
    "dead worker's streams": ("a worker killed with streams open: /metrics' open-stream gauge forgets them, the "
                              "server answers", TESTS + "test_serve_server_choice.py::test_serve_runs_gunicorn_with_"
                              "the_settings_production_runs_with"),
    "bad setting at start": ("a wrong key-encryption key: one line naming the variable, no traceback, an exit",
                             TESTS + "test_gunicorn_start.py::test_a_wrong_key_encryption_key_is_one_line_naming_"
                             "the_variable"),
}


@dataclass
class Check:
    passed: bool
    detail: str

    def as_dict(self) -> dict:
        return {"passed": self.passed, "detail": self.detail}


@dataclass
class Sockets:
    """TLS (or plain) client sockets to nginx, read together with poll()."""
    address: tuple[str, int]
    context: ssl.SSLContext | None
    socks: list[socket.socket] = field(default_factory=list)
    received: dict[int, bytes] = field(default_factory=dict)
    closed: set[int] = field(default_factory=set)

    def open(self, first_bytes: bytes = b"") -> socket.socket:
        sock = socket.create_connection(self.address, timeout=30)
        if self.context is not None:
            sock = self.context.wrap_socket(sock, server_hostname=self.address[0])
        if first_bytes:
            sock.sendall(first_bytes)
        sock.setblocking(False)
        self.socks.append(sock)
        self.received[sock.fileno()] = b""
        return sock

    def read_until(self, done, timeout: float) -> None:
        by_fd = {sock.fileno(): sock for sock in self.socks if sock.fileno() not in self.closed}
        poller = select.poll()
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not done(self) and time.monotonic() < deadline:
            for fd, _ in poller.poll(200):
                data = _read(by_fd[fd])
                if data is None:
                    continue
                if data:
                    self.received[fd] += data
                else:
                    self.closed.add(fd)
                    poller.unregister(fd)

    def with_text(self, text: bytes) -> list[int]:
        return [fd for fd, data in self.received.items() if text in data]

    def send_each(self, data: bytes) -> None:
        for sock in self.socks:
            if sock.fileno() not in self.closed:
                try:
                    sock.send(data)
                except (OSError, ssl.SSLError):
                    pass

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def _read(sock: socket.socket) -> bytes | None:
    """What came (b"" at the end), None if nothing yet (a TLS record not yet whole)."""
    try:
        return sock.recv(65536)
    except (ssl.SSLWantReadError, BlockingIOError):
        return None
    except (OSError, ssl.SSLError):
        return b""


def tls_context(deployment: Deployment) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(deployment.server_ca))


def address(deployment: Deployment) -> tuple[str, int]:
    host, port = deployment.url.removeprefix("https://").split(":")
    return host, int(port)


def server_threads(deployment: Deployment) -> dict[str, int]:
    """Threads of every process of each app server's tree (/proc/PID/task), by server."""
    counts = {}
    for server, root in deployment.servers.items():
        counts[server] = 0
        for pid in tree_pids(root):
            try:
                counts[server] += len(os.listdir(f"/proc/{pid}/task"))
            except OSError:
                pass  # gone meanwhile
    return counts


def answered_within(deployment: Deployment, seconds: float = ANSWER_WITHIN_S) -> tuple[bool, float]:
    """GET /healthz on a new connection: whether it was 200 within `seconds`, and how long it took."""
    started = time.monotonic()
    try:
        ok = deployment.https().get(deployment.url + "/healthz", timeout=seconds).status_code == 200
    except Exception:  # noqa: BLE001 - a timeout or a reset is the answer that did not come
        ok = False
    return ok, time.monotonic() - started


def signed_in(deployment: Deployment, name: str, password: str) -> Client:
    device = Client(deployment.url, session=deployment.https(), timeout=30)
    device.register(username=name, email=f"{name}@example.com", password=password, key_kind="ecdsa-p256")
    device.login(password, force=True)
    return device


def events_request(client: Client, base_url: str) -> bytes:
    host, port = base_url.split("://", 1)[1].split(":")
    auth = client.auth_headers("GET", base_url + "/session/events")  # a DPoP proof is single-use
    return (f"GET /session/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth['Authorization']}\r\n"
            f"DPoP: {auth['DPoP']}\r\nAccept: text/event-stream\r\n\r\n").encode()


def open_streams(deployment: Deployment, client: Client, count: int) -> tuple[Sockets, int]:
    """`count` event streams through nginx; how many were answered 200 with their first line within
    STREAM_DEADLINE_S."""
    streams = Sockets(address(deployment), tls_context(deployment))
    for _ in range(count):
        streams.open(events_request(client, deployment.url))
    streams.read_until(lambda s: len(_streaming(s)) == count, timeout=STREAM_DEADLINE_S)
    return streams, len(_streaming(streams))


def _streaming(streams: Sockets) -> list[int]:
    return [fd for fd, data in streams.received.items() if data.startswith(b"HTTP/1.1 200") and b"retry:" in data]


def run_protections(deployment: Deployment, client: Client) -> tuple[dict[str, Check], dict]:
    """Every check at one candidate; and its server threads idle and with STREAMS streams open."""
    checks: dict[str, Check] = {}
    host, port = address(deployment)
    context = tls_context(deployment)
    heads, bodies = Sockets((host, port), context), Sockets((host, port), context)
    opened = time.monotonic()
    for _ in range(SLOW_CLIENTS):
        heads.open(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode())
        bodies.open(f"POST /session/refresh HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    "Content-Length: 1000\r\n\r\n{".encode())
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5) and time.monotonic() - opened < TRICKLE_S:
            heads.send_each(b"X")
            bodies.send_each(b" ")
    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    while_slow = [answered_within(deployment) for _ in range(3)]
    trickler.join()
    threads: dict = {"idle": server_threads(deployment)}
    checks["idle connections"] = _idle(deployment)
    streams, answered = open_streams(deployment, client, STREAMS)
    threads |= {"streams_open": answered, "with_streams": server_threads(deployment)}
    ok, took = answered_within(deployment)
    checks["open streams"] = Check(answered == STREAMS and ok,
                                   f"{answered}/{STREAMS} streams answered; then /healthz {_said(ok, took)}")
    streams.close()
    checks["body over 64 KiB"] = _too_large(deployment)
    checks["malformed head"] = _malformed(deployment)
    left = CUT_WITHIN_S - (time.monotonic() - opened)
    for slow in (heads, bodies):
        slow.read_until(lambda s: len(s.closed) == SLOW_CLIENTS, timeout=max(left, 1.0))
    cut_s = time.monotonic() - opened
    every = all(ok for ok, _ in while_slow)
    slowest = max(took for _, took in while_slow)
    for name, slow in (("slow head", heads), ("slow body", bodies)):
        statuses = sorted({data.split(b"\r\n", 1)[0].decode(errors="replace") for data in slow.received.values()
                           if data} or {"nothing"})
        checks[name] = Check(every and len(slow.closed) == SLOW_CLIENTS,
                             f"/healthz while they trickled: {_said(every, slowest)}; {len(slow.closed)}/"
                             f"{SLOW_CLIENTS} cut within {cut_s:.0f} s, hearing {', '.join(statuses)}")
        slow.close()
    checks["held poll at stop"] = held_poll_at_stop(deployment)
    checks["dead worker's streams"] = dead_worker(deployment)
    checks["bad setting at start"] = bad_start(deployment)
    return checks, threads


def _said(ok: bool, took: float) -> str:
    return f"answered in {1000 * took:.0f} ms" if ok else f"not answered within {ANSWER_WITHIN_S:g} s"


def _idle(deployment: Deployment) -> Check:
    idle = Sockets(address(deployment), None)  # TCP only: not even a TLS handshake
    try:
        for _ in range(IDLE):
            idle.open()
        ok, took = answered_within(deployment)
        return Check(ok, f"{IDLE} open; /healthz {_said(ok, took)}")
    finally:
        idle.close()


def _too_large(deployment: Deployment) -> Check:
    http = deployment.https()
    body = b'{"a": "' + b"x" * (100 * 1024) + b'"}'
    answer = http.post(deployment.url + "/session/refresh", data=body, timeout=30,
                       headers={"Content-Type": "application/json"})
    kind = answer.headers.get("Content-Type", "")
    code = answer.json().get("code") if kind.startswith("application/problem+json") else None
    after = http.post(deployment.url + "/session/refresh", json={}, timeout=30)
    ok = answer.status_code == 413 and code == "payload_too_large" and after.status_code == 400
    return Check(ok, f"{answer.status_code} {kind or '-'} code={code}; next on the connection {after.status_code}")


def _malformed(deployment: Deployment) -> Check:
    with tls_context(deployment).wrap_socket(socket.create_connection(address(deployment), timeout=30),
                                             server_hostname="127.0.0.1") as sock:
        sock.sendall(b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    kind = next((line.split(b":", 1)[1].strip().decode() for line in answer.split(b"\r\n")
                 if line.lower().startswith(b"content-type:")), "-")
    ok = len(status.split()) > 1 and status.split()[1].startswith("4")
    return Check(ok, f"{status}, {kind} (answered by {answer.split(b'Server: ', 1)[-1][:12]!r})"
                 if b"Server: " in answer else f"{status}, {kind}")


def bad_start(deployment: Deployment) -> Check:
    """Each of the candidate's servers started on its tables with a wrong key-encryption key (as deployed,
    no launcher around it): it must exit within START_DEADLINE_S with one line of citylogin's naming the
    variable (the server's own log lines aside, as the test counts) and no traceback."""
    details, passed = [], True
    env = {**deployment.env, "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    for server in deployment.servers:
        process = subprocess.Popen(server_command(server, free_port()), env=env, cwd=PROJECT_ROOT,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            output, _ = process.communicate(timeout=START_DEADLINE_S)
            exited = True
        except subprocess.TimeoutExpired:
            stop_tree(process)
            output, _ = process.communicate(timeout=30)
            exited = False
        text = output.decode(errors="replace")
        # as the test counts them: citylogin's lines, not the server's own log lines ("[...] ...")
        ours = [line for line in text.splitlines() if line.strip() and not line.startswith("[")]
        named = len(ours) == 1 and "CITYLOGIN_KEY_ENCRYPTION_KEY" in ours[0]
        traceback = "Traceback" in text
        ok = exited and process.returncode != 0 and named and not traceback
        passed = passed and ok
        details.append(f"{server}: " + (f"exit {process.returncode}" if exited else
                                        f"still running after {START_DEADLINE_S:g} s") +
                       f", {len(ours)} line{'s' * (len(ours) != 1)} of citylogin's"
                       + (f" ({sum('CITYLOGIN_KEY_ENCRYPTION_KEY' in line for line in ours)} naming the variable)"
                          if len(ours) != 1 else (" naming the variable" if named else ", not naming the variable"))
                       + (", a traceback" if traceback else ""))
    return Check(passed, "; ".join(details))



@contextmanager
def alone(deployment: Deployment) -> Iterator[tuple[str, str, subprocess.Popen]]:
    """The server that serves the candidate's streams and long polls (nginx sends /session/events and
    /ssf/poll to it), started alone on the candidate's tables with its own address and /metrics directory:
    (its name, its URL, its process)."""
    server = "gunicorn" if "gunicorn" in deployment.servers else "granian"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as metrics:
        env = {**deployment.env, "CITYLOGIN_PUBLIC_URL": url, "PROMETHEUS_MULTIPROC_DIR": metrics}
        process = subprocess.Popen(server_command(server, port), env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield server, url, process
        finally:
            stop_tree(process)


def dead_worker(deployment: Deployment) -> Check:
    """DEAD_WORKER_STREAMS streams open on the server alone, one of its workers killed (SIGKILL): /metrics'
    citylogin_event_streams_active must come to the streams still open within STREAM_DEADLINE_S, and the
    server answer /readyz."""
    with alone(deployment) as (server, url, process):
        http = requests.Session()
        http.trust_env = False
        if not _ready(http, url, process):
            return Check(False, f"{server} did not start")
        device = Client(url, session=http, timeout=30)
        name = f"dw{os.urandom(4).hex()}"
        device.register(username=name, email=f"{name}@example.com", password=name + "-Passw0rd!", key_kind="ecdsa-p256")
        device.login(name + "-Passw0rd!", force=True)
        host, port = url.removeprefix("http://").split(":")
        streams = Sockets((host, int(port)), None)
        for _ in range(DEAD_WORKER_STREAMS):
            streams.open(events_request(device, url))
        streams.read_until(lambda s: len(_streaming(s)) == DEAD_WORKER_STREAMS, timeout=STREAM_DEADLINE_S)
        try:
            before = _gauge(http, url, "citylogin_event_streams_active")
            workers = [pid for pid, (ppid, _) in _process_table().items() if ppid == process.pid]
            if len(workers) < 2:
                return Check(False, f"{server}: {len(workers)} workers")
            os.kill(workers[0], signal.SIGKILL)
            streams.read_until(lambda s: bool(s.closed), timeout=STREAM_DEADLINE_S)
            streams.read_until(lambda s: False, timeout=2.0)  # the rest of the dead worker's sockets closing
            still = DEAD_WORKER_STREAMS - len(streams.closed)
            deadline = time.monotonic() + STREAM_DEADLINE_S
            gauge = _gauge(http, url, "citylogin_event_streams_active")
            while gauge != still and time.monotonic() < deadline:
                time.sleep(0.5)
                gauge = _gauge(http, url, "citylogin_event_streams_active")
            answering = _ready(http, url, process)
        finally:
            streams.close()
        ok = gauge == still and answering
        return Check(ok, f"{server}: gauge {_shown(before)} with {DEAD_WORKER_STREAMS} open; a worker killed, "
                         f"{len(streams.closed)} of them closed, gauge {_shown(gauge)} for {still} still open; "
                         + ("/readyz answered" if answering else "/readyz not answered (the server is gone)"))


def _shown(value: float | None) -> str:
    return "- (no /metrics)" if value is None else f"{value:g}"


def _ready(http: requests.Session, url: str, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + START_DEADLINE_S
    while not _answers(http, url + "/readyz"):
        if time.monotonic() > deadline or process.poll() is not None:
            return False
        time.sleep(0.2)
    return True


def held_poll_at_stop(deployment: Deployment) -> Check:
    """The server that holds the candidate's long polls, alone, sent SIGTERM while an app's poll is held: how
    soon the poll is answered and the server exits."""
    with alone(deployment) as (server, url, process):
        return _stop_with_held_poll(server, url, process, quiet_app({**deployment.env}))


def quiet_app(env: dict[str, str]) -> dict[str, str]:
    """A new app (`citylogin apps add`): no session of it ended yet, so its poll finds nothing and is held
    (the bench's own app has events waiting: its sign-ins replaced grants)."""
    done = subprocess.run([str(VENV_BIN / "citylogin"), "apps", "add", f"held-poll-{os.urandom(4).hex()}", "--json"],
                          env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin apps add failed:\n{done.stdout}\n{done.stderr}")
    app = json.loads(done.stdout)
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}


def _stop_with_held_poll(server: str, url: str, process: subprocess.Popen, app: dict[str, str]) -> Check:
    http = requests.Session()
    http.trust_env = False
    if not _ready(http, url, process):
        return Check(False, f"{server} did not start")
    deadline = time.monotonic() + START_DEADLINE_S
    answers: list[tuple[int, float]] = []

    def poll() -> None:
        try:
            answer = requests.post(url + "/ssf/poll", json={}, auth=(app["client_id"], app["client_secret"]),
                                   timeout=STOP_DEADLINE_S + 40)
            answers.append((answer.status_code, time.monotonic()))
        except requests.RequestException:
            answers.append((0, time.monotonic()))
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    while (_gauge(http, url, "citylogin_ssf_polls_held") or 0) < 1:
        if time.monotonic() > deadline:
            return Check(False, f"{server}: the poll was not held")
        time.sleep(0.2)
    stopped = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code: int | None = process.wait(timeout=STOP_DEADLINE_S + 20)
    except subprocess.TimeoutExpired:
        code = None
    exited = time.monotonic() - stopped
    poller.join(timeout=30)
    status, at = answers[0] if answers else (0, time.monotonic())
    answered = at - stopped
    ok = status == 200 and answered < ANSWER_WITHIN_S and code == 0 and exited < STOP_DEADLINE_S
    return Check(ok, f"{server}: poll answered {status or 'never'} after {answered:.1f} s; "
                     + (f"exit {code} after {exited:.1f} s" if code is not None else
                        f"still running {STOP_DEADLINE_S + 20:g} s after SIGTERM"))


def _answers(http: requests.Session, url: str) -> bool:
    try:
        return http.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _gauge(http: requests.Session, url: str, name: str) -> float | None:
    """The gauge's value summed over its labels; None if /metrics did not answer."""
    try:
        text = http.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    except requests.RequestException:
        return None
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))

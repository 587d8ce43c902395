"""The runtime folder as `serve` and the operator commands see it (issue 62), as ssh and gpg treat theirs: a
record planted there by another user never sends `citylogin apps list` to the DynamoDB it names, and a folder
that another user owns or may write in is refused by `serve` and the commands alike, with one line and exit
status 1: nothing written there, nothing started, nothing connected to. The tests run as root; "another user"
is uid 65534 (nobody), given the folder or the record with os.chown. The planted endpoint is a real socket:
a connection to it is accepted by the kernel and waits in its backlog, so an empty backlog once the command
has ended is proof that it never connected."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from citylogin.server.running_services import folder_problem, recorded
from common.config import load_settings
from common.version import running_version
from tests.support.ports import free_port

OTHER_UID = 65534


def environment(runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    return {**env, "CITYLOGIN_RUNTIME_DIR": str(runtime)}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "citylogin", *args]


def citylogin(folder: Path, runtime: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), cwd=folder, env=environment(runtime), capture_output=True,
                          text=True, timeout=120)


@contextmanager
def planted_endpoint() -> Iterator[socket.socket]:
    """A DynamoDB endpoint of the attacker's: a socket that listens and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.setblocking(False)
        yield listening


def url_of(listening: socket.socket) -> str:
    return f"http://127.0.0.1:{listening.getsockname()[1]}"


def connections(listening: socket.socket) -> int:
    """The connections made to `listening` so far (each taken from its backlog and closed)."""
    count = 0
    while True:
        try:
            connection, _ = listening.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


@contextmanager
def live_record(tmp_path: Path, runtime: Path, endpoint: str) -> Iterator[Path]:
    """A record naming a live process (this test's own) and `endpoint`, as a planted one would."""
    settings = load_settings({"data_dir": tmp_path / "theirs", "runtime_dir": runtime}, environ={})
    with recorded(settings, url="http://localhost:5999", dynamodb_endpoint_url=endpoint):
        yield runtime / f"serve-{os.getpid()}.json"


def contents(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.lstat().st_uid, p.lstat().st_mode, p.read_bytes()) for p in folder.iterdir()}


def test_a_record_planted_by_another_user_sends_apps_list_nowhere(tmp_path):
    runtime, work = tmp_path / "runtime", tmp_path / "work"
    work.mkdir()
    with planted_endpoint() as listening, live_record(tmp_path, runtime, url_of(listening)) as record:
        os.chown(record, OTHER_UID, -1)
        done = citylogin(work, runtime, "apps", "list")
        assert done.returncode == 1 and done.stdout == "", done.stderr
        assert f"ignored {record}: it belongs to uid {OTHER_UID}, not to you (uid 0); remove it" in done.stderr
        assert "no citylogin runs" in done.stderr
        assert connections(listening) == 0
        assert list(work.iterdir()) == []

        # The same record as the user's own is used (named, as it is not this folder's): the command connects
        # to the endpoint it names.
        os.chown(record, os.geteuid(), -1)
        using = subprocess.Popen(command("apps", "list", "--service", "http://localhost:5999"), cwd=work,
                                 env=environment(runtime),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            listening.settimeout(120)
            listening.accept()[0].close()
        finally:
            using.kill()
            using.wait(timeout=60)


# Each rule once (the property test of folder_problem has every mode): the attack's folder, and each rule alone.
SHARED = [pytest.param(OTHER_UID, 0o777, id="another-users-shared-folder"),
          pytest.param(OTHER_UID, 0o700, id="another-users-private-folder"),
          pytest.param(0, 0o775, id="group-writable")]


@pytest.mark.parametrize("owner, mode", SHARED)
def test_a_folder_not_the_users_alone_is_refused_by_serve_and_apps_list_with_one_line(tmp_path, owner, mode):
    runtime, work = tmp_path / "runtime", tmp_path / "work"
    work.mkdir()
    with planted_endpoint() as listening, live_record(tmp_path, runtime, url_of(listening)) as record:
        os.chown(record, owner, -1)
        os.chown(runtime, owner, -1)
        runtime.chmod(mode)
        before = contents(runtime)
        refusal = f"Error: {folder_problem(runtime, stat.S_IFDIR | mode, owner, os.geteuid())}"
        assert (f"belongs to uid {OTHER_UID}" if owner == OTHER_UID else f"`chmod 700 {runtime}`") in refusal

        for args in (["serve", "--port", str(free_port())], ["apps", "list"]):
            done = citylogin(work, runtime, *args)
            said = [f"citylogin {running_version()} starting"] if args[0] == "serve" else []  # serve's first line
            assert (done.returncode, done.stdout, done.stderr.splitlines()) == (1, "", [*said, refusal]), done.stderr
            assert contents(runtime) == before
            assert list(work.iterdir()) == []  # no data directory: no DynamoDB Local was started
            assert connections(listening) == 0

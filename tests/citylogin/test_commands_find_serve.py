"""The operator commands find the running `citylogin serve` from any folder, or refuse clearly (issue 54):
`citylogin apps add my-api --json > my-api.json` run in an API's own folder uses the service, starts no
second DynamoDB Local and leaves no data directory there; with no service it fails with an error that says
what to do, exits non-zero and writes nothing to stdout."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from tests.support.ports import free_port


def environment(runtime: Path, **more: str) -> dict[str, str]:
    """A shell of the operator: no CITYLOGIN_* setting but `more`, the runtime folder of this test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    return {**env, "XDG_RUNTIME_DIR": str(runtime), "CITYLOGIN_ARGON2_MEMORY_COST": "8192", **more}


def citylogin(folder: Path, runtime: Path, *args: str, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citylogin.cli", *args], cwd=folder, capture_output=True, text=True,
                          env=environment(runtime, **more), timeout=120)


def shell(folder: Path, runtime: Path, line: str) -> subprocess.CompletedProcess:
    """A command line as the guide writes it, `>` included."""
    env = environment(runtime)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", line], cwd=folder, capture_output=True, text=True, env=env, timeout=120)


@contextmanager
def serving_in(folder: Path, runtime: Path, port: int) -> Iterator[subprocess.Popen]:
    """`citylogin serve --port PORT` run in `folder` as the README runs it (its data in folder/.data)."""
    with open(folder.parent / "serve.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "citylogin.cli", "serve", "--port", str(port)], cwd=folder,
                                   env=environment(runtime), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 120  # DynamoDB Local alone may take 30 s on a loaded machine
            while True:
                assert process.poll() is None and time.monotonic() < deadline, (folder.parent / "serve.log").read_text()
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    time.sleep(0.2)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)


def test_commands_of_another_folder_use_the_running_serve_and_leave_nothing_there(tmp_path):
    runtime, service, api = tmp_path / "runtime", tmp_path / "service", tmp_path / "my-api"
    service.mkdir()
    api.mkdir()
    port = free_port()
    with serving_in(service, runtime, port) as process:
        [record] = list(runtime.glob("citylogin/serve-*.json"))
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert json.loads(record.read_text())["data_dir"] == str((service / ".data").resolve())

        added = shell(api, runtime, "citylogin apps add my-api --json > my-api.json")
        assert added.returncode == 0, added.stderr
        credentials = json.loads((api / "my-api.json").read_text())
        assert f"citylogin serve at http://localhost:{port}, pid {process.pid}" in added.stderr
        assert sorted(p.name for p in api.iterdir()) == ["my-api.json"]  # no .data, no second engine
        # The app is the running service's: it introspects there.
        answer = requests.post(f"http://127.0.0.1:{port}/session/introspect", data={"token": "x"}, timeout=10,
                               auth=(credentials["client_id"], credentials["client_secret"]))
        assert answer.status_code == 200 and answer.json() == {"active": False}

        for args in (["init"], ["keys", "list"], ["apps", "list"]):
            done = citylogin(api, runtime, *args)
            assert done.returncode == 0 and "citylogin init" not in done.stdout + done.stderr, done.stderr
        assert "already" in citylogin(api, runtime, "init").stdout
        assert sorted(p.name for p in api.iterdir()) == ["my-api.json"]

        # An empty CITYLOGIN_DATA_DIR is not silently swapped for the service's, nor told to run init.
        empty = tmp_path / "empty"
        named = citylogin(api, runtime, "admin", "show", "nobody", CITYLOGIN_DATA_DIR=str(empty))
        assert named.returncode == 1 and named.stdout == ""
        assert f"no citylogin data in {empty}" in named.stderr and str(service / ".data") in named.stderr
        assert "citylogin init" not in named.stderr and not empty.exists()

        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        assert not record.exists()

    failed = shell(api, runtime, "citylogin apps add other --json > other.json")
    assert failed.returncode == 1
    assert (api / "other.json").read_text() == ""  # the shell made it; the command wrote nothing into it
    [error] = failed.stderr.strip().splitlines()
    assert error.startswith("Error: no citylogin runs and there is no citylogin data in "), error
    assert "start `citylogin serve`" in error and "CITYLOGIN_DATA_DIR" in error and "citylogin init" not in error
    assert sorted(p.name for p in api.iterdir()) == ["my-api.json", "other.json"]


def test_a_record_of_a_serve_that_was_killed_is_ignored_and_removed(tmp_path):
    runtime, api = tmp_path / "runtime", tmp_path / "api"
    api.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = runtime / "citylogin"
    folder.mkdir(parents=True)
    stale = folder / f"serve-{gone.pid}.json"
    stale.write_text(json.dumps({"pid": gone.pid, "started": "1", "url": "http://localhost:1",
                                 "dynamodb_endpoint_url": "http://127.0.0.1:1", "data_dir": str(tmp_path / "x"),
                                 "table_prefix": "citylogin_", "key_encryption": "data_dir"}))
    done = citylogin(api, runtime, "keys", "list")
    assert done.returncode == 1 and done.stdout == "" and "no citylogin runs" in done.stderr
    assert not stale.exists() and list(api.iterdir()) == []


def test_a_command_beside_two_services_asks_which(tmp_path):
    """Two live records (this test's own process stands for both): from a third folder the command names
    both and stops; it never guesses. Nothing is started, so no DynamoDB is needed."""
    from citylogin.running_services import recorded
    from common.config import load_settings

    runtime = tmp_path / "runtime"
    settings = load_settings({"data_dir": tmp_path / "one", "runtime_dir": runtime / "citylogin"})
    with recorded(settings, url="http://localhost:5001", dynamodb_endpoint_url="http://127.0.0.1:9"):
        # A record of the same process: a second file under another name, as another serve would write.
        first = next((runtime / "citylogin").glob("serve-*.json"))
        twin = first.with_name("serve-twin.json")
        twin.write_text(first.read_text().replace(str(tmp_path / "one"), str(tmp_path / "two"))
                        .replace("5001", "5002"))
        done = citylogin(tmp_path, runtime, "apps", "list")
        twin.unlink()
    assert done.returncode == 1 and done.stdout == ""
    assert "2 citylogin services run" in done.stderr and "localhost:5001" in done.stderr
    assert "localhost:5002" in done.stderr and "set CITYLOGIN_DATA_DIR" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime"]


def test_a_service_that_seals_under_a_set_key_needs_it_in_the_commands_shell_too(tmp_path):
    from citylogin.running_services import recorded
    from common.config import load_settings

    runtime = tmp_path / "runtime"
    settings = load_settings({"data_dir": tmp_path / "service", "runtime_dir": runtime / "citylogin",
                              "key_encryption_key": "A" * 43 + "="})
    with recorded(settings, url="http://localhost:5003", dynamodb_endpoint_url="http://127.0.0.1:9"):
        done = citylogin(tmp_path, runtime, "keys", "list")
    assert done.returncode == 1 and done.stdout == ""
    assert "seals its key ring under CITYLOGIN_KEY_ENCRYPTION_KEY: set it in this shell too" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime"]


def test_data_without_a_ring_and_no_service_is_not_answered_with_init(tmp_path):
    """What the old behaviour left in an API's folder (a DynamoDB Local's files, no key ring): with no service
    running, the command says to start the service or name its folder, not to make a second citylogin."""
    from database import dynamo
    from database.dynamodb_local import DynamoDBLocal

    runtime, api = tmp_path / "runtime", tmp_path / "my-api"
    with DynamoDBLocal(db_path=api / ".data" / "dynamodb") as local:
        client = dynamo.make_client(region="us-east-1", endpoint_url=local.endpoint_url, local=True)
        dynamo.ensure_tables(client, dynamo.TableNames.with_prefix("citylogin_"))
    done = citylogin(api, runtime, "apps", "list")
    assert done.returncode == 1 and done.stdout == ""
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: the citylogin data in {api / '.data'} holds no key ring, and no citylogin "
                            "serve runs"), done.stderr
    assert "citylogin init" not in done.stderr

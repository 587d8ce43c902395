"""The operator commands find the running `citylogin serve` that is theirs, or refuse clearly (issues 54, 65):
`citylogin apps add my-api --service URL --json > my-api.json` run in an API's own folder uses the service
named, starts no second DynamoDB Local and leaves no data directory there; with no service it fails with an
error that says what to do, exits non-zero and writes nothing to stdout. Beside two deployments on one host,
each command acts on the one of its folder or the one named, and from any other folder it refuses, lists both
and reads, writes and starts nothing."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import requests

from citylogin.server.running_services import deployment_fingerprint
from tests.support.ports import free_port


def environment(runtime: Path, **more: str) -> dict[str, str]:
    """A shell of the operator: no CITYLOGIN_* setting but `more`, the runtime folder of this test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    return {**env, "XDG_RUNTIME_DIR": str(runtime), "CITYLOGIN_ARGON2_MEMORY_COST": "8192", **more}


def citylogin(folder: Path, runtime: Path, *args: str, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citylogin", *args], cwd=folder, capture_output=True, text=True,
                          env=environment(runtime, **more), timeout=120)


def shell(folder: Path, runtime: Path, line: str) -> subprocess.CompletedProcess:
    """A command line as the guide writes it, `>` included."""
    env = environment(runtime)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", line], cwd=folder, capture_output=True, text=True, env=env, timeout=120)


@contextmanager
def serving_in(folder: Path, runtime: Path, port: int) -> Iterator[subprocess.Popen]:
    """`citylogin serve --port PORT` run in `folder` as the README runs it (its data in folder/.data)."""
    with serving([(folder, port)], runtime) as [process]:
        yield process


@contextmanager
def serving(places: list[tuple[Path, int]], runtime: Path) -> Iterator[list[subprocess.Popen]]:
    """`citylogin serve --port PORT` in each folder, started together, once every one answers /readyz; each
    logs into FOLDER-serve.log beside its folder."""
    with ExitStack() as stack:
        processes = [stack.enter_context(_serve(folder, runtime, port)) for folder, port in places]
        for (folder, port), process in zip(places, processes, strict=True):
            log = folder.parent / f"{folder.name}-serve.log"
            deadline = time.monotonic() + 120  # DynamoDB Local alone may take 30 s on a loaded machine
            while True:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                try:
                    if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    time.sleep(0.2)
        yield processes


@contextmanager
def _serve(folder: Path, runtime: Path, port: int) -> Iterator[subprocess.Popen]:
    with open(folder.parent / f"{folder.name}-serve.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "citylogin", "serve", "--port", str(port)], cwd=folder,
                                   env=environment(runtime), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=60)


def test_commands_of_another_folder_use_the_running_serve_named_and_leave_nothing_there(tmp_path):
    runtime, service, api = tmp_path / "runtime", tmp_path / "service", tmp_path / "my-api"
    service.mkdir()
    api.mkdir()
    port = free_port()
    with serving_in(service, runtime, port) as process:
        [record] = list(runtime.glob("citylogin/serve-*.json"))
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert json.loads(record.read_text())["data_dir"] == str((service / ".data").resolve())

        # Not this folder's service, and not named: refused, even as the only one running (issue 65).
        unnamed = shell(api, runtime, "citylogin apps add my-api --json > my-api.json")
        assert unnamed.returncode == 1 and (api / "my-api.json").read_text() == "", unnamed.stderr
        assert "one runs elsewhere: " f"http://localhost:{port} (pid {process.pid}, data in " in unnamed.stderr

        added = shell(api, runtime, f"citylogin apps add my-api --service http://localhost:{port} --json > my-api.json")
        assert added.returncode == 0, added.stderr
        credentials = json.loads((api / "my-api.json").read_text())
        assert f"citylogin serve at http://localhost:{port}, pid {process.pid}" in added.stderr
        assert sorted(p.name for p in api.iterdir()) == ["my-api.json"]  # no .data, no second engine
        # The app is the running service's: it introspects there.
        answer = requests.post(f"http://127.0.0.1:{port}/session/introspect", data={"token": "x"}, timeout=10,
                               auth=(credentials["client_id"], credentials["client_secret"]))
        assert answer.status_code == 200 and answer.json() == {"active": False}

        for args in (["init"], ["keys", "list"], ["apps", "list"]):
            done = citylogin(api, runtime, *args, "--service", str(process.pid))
            assert done.returncode == 0 and "citylogin init" not in done.stdout + done.stderr, done.stderr
        assert "already" in citylogin(api, runtime, "init", "--service", str(process.pid)).stdout
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


def apps_of(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, done.stderr
    return [app["name"] for app in json.loads(done.stdout)]


def stale_record(runtime: Path, data_dir: Path) -> Path:
    """The record of a serve that was killed: its pid is gone."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (runtime / "citylogin").mkdir(parents=True, exist_ok=True)
    stale = runtime / "citylogin" / f"serve-{gone.pid}.json"
    defining = {"url": "http://localhost:1", "dynamodb_endpoint_url": "http://127.0.0.1:1", "data_dir": str(data_dir),
                "table_prefix": "citylogin_", "jwt_issuer": "citylogin", "key_encryption": "data_dir"}
    stale.write_text(json.dumps({"pid": gone.pid, "started": "1", **defining,
                                 "fingerprint": deployment_fingerprint(**defining)}))
    return stale


def test_beside_two_deployments_a_command_acts_on_its_own_or_the_one_named_and_else_touches_nothing(tmp_path):
    """Staging and production served on one host, for one user; a command from a third folder refuses, names
    both and how to choose, and reads, writes and starts nothing: its `apps add` is in neither deployment,
    and no DynamoDB Local of its own was started (it would have made .data there)."""
    runtime, neutral = tmp_path / "runtime", tmp_path / "neutral"
    staging, production = tmp_path / "staging", tmp_path / "production"
    for folder in (neutral, staging, production):
        folder.mkdir()
    stale = stale_record(runtime, tmp_path / "killed" / ".data")
    ports = {staging: free_port(), production: free_port()}
    with serving(list(ports.items()), runtime) as [on_staging, on_production]:
        refused = citylogin(neutral, runtime, "apps", "add", "leaked", "--json")
        assert (refused.returncode, refused.stdout) == (1, ""), refused.stderr
        [line] = refused.stderr.splitlines()
        assert line.startswith(f"Error: no running citylogin is the one of this folder (its data directory "
                               f"{neutral / '.data'} holds no citylogin), and 2 run elsewhere: ")
        for folder, process in ((staging, on_staging), (production, on_production)):
            assert f"http://localhost:{ports[folder]} (pid {process.pid}, data in {folder / '.data'}, " in line
        assert "--service URL or --service PID" in line and "set CITYLOGIN_DATA_DIR" in line
        assert line.endswith("nothing was read, written or started") and "localhost:1 " not in line
        assert not stale.exists()  # the killed serve's record: ignored and removed
        init = citylogin(neutral, runtime, "init")
        assert init.returncode == 1 and "set CITYLOGIN_DATA_DIR=" in init.stderr, init.stderr
        assert list(neutral.iterdir()) == []

        # In its folder, or with its data directory named, a command acts on its own deployment.
        assert citylogin(staging, runtime, "apps", "add", "staging-api").returncode == 0
        added = citylogin(production, runtime, "apps", "add", "production-api")
        assert f"citylogin serve at http://localhost:{ports[production]}, pid {on_production.pid}" in added.stderr
        assert apps_of(citylogin(staging, runtime, "apps", "list", "--json")) == ["staging-api"]
        assert apps_of(citylogin(neutral, runtime, "apps", "list", "--json",
                                 CITYLOGIN_DATA_DIR=str(production / ".data"))) == ["production-api"]

        # Named, from anywhere: by address after the command or by pid after the group.
        assert apps_of(citylogin(neutral, runtime, "apps", "list", "--json", "--service",
                                 f"http://localhost:{ports[production]}/")) == ["production-api"]
        assert apps_of(citylogin(neutral, runtime, "apps", "--service", str(on_staging.pid), "list",
                                 "--json")) == ["staging-api"]
        nobody = citylogin(neutral, runtime, "apps", "list", "--service", f"http://localhost:{free_port()}")
        assert nobody.returncode == 1 and nobody.stdout == "" and "(--service); those that run: " in nobody.stderr
        assert str(on_staging.pid) in nobody.stderr and str(on_production.pid) in nobody.stderr

        # A deployment-defining setting of the shell's own that names another deployment: refused, named.
        other = citylogin(staging, runtime, "apps", "add", "x", CITYLOGIN_TABLE_PREFIX="production_")
        assert other.returncode == 1 and "CITYLOGIN_TABLE_PREFIX is 'production_' here, 'citylogin_' there" in \
            other.stderr, other.stderr
        assert apps_of(citylogin(staging, runtime, "apps", "list", "--json")) == ["staging-api"]
        assert list(neutral.iterdir()) == []


def test_a_record_of_a_serve_that_was_killed_is_ignored_and_removed(tmp_path):
    runtime, api = tmp_path / "runtime", tmp_path / "api"
    api.mkdir()
    stale = stale_record(runtime, tmp_path / "x")
    done = citylogin(api, runtime, "keys", "list")
    assert done.returncode == 1 and done.stdout == "" and "no citylogin runs" in done.stderr
    assert not stale.exists() and list(api.iterdir()) == []


def test_a_command_beside_two_services_asks_which(tmp_path):
    """Two live records (this test's own process stands for both): from a third folder the command names
    both and stops; it never guesses. Nothing is started, so no DynamoDB is needed."""
    from citylogin.server.running_services import recorded
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
    assert "and 2 run elsewhere: " in done.stderr and "localhost:5001" in done.stderr
    assert "localhost:5002" in done.stderr and "set CITYLOGIN_DATA_DIR" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime"]


def test_a_service_that_seals_under_a_set_key_needs_it_in_the_commands_shell_too(tmp_path):
    from citylogin.server.running_services import recorded
    from common.config import load_settings

    runtime = tmp_path / "runtime"
    settings = load_settings({"data_dir": tmp_path / "service", "runtime_dir": runtime / "citylogin",
                              "key_encryption_key": "A" * 43 + "="})
    with recorded(settings, url="http://localhost:5003", dynamodb_endpoint_url="http://127.0.0.1:9"):
        done = citylogin(tmp_path, runtime, "keys", "list", CITYLOGIN_DATA_DIR=str(tmp_path / "service"))
    assert done.returncode == 1 and done.stdout == ""
    assert "seals its key ring under CITYLOGIN_KEY_ENCRYPTION_KEY: set it in this shell too" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runtime"]


def test_data_without_a_ring_and_no_service_is_not_answered_with_init(tmp_path):
    """What the old behaviour left in an API's folder (a DynamoDB Local's files, no key ring): with no service
    running, the command says to start the service or name its folder, not to make a second citylogin."""
    from common.database import dynamo
    from common.database.dynamodb_local import DynamoDBLocal

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

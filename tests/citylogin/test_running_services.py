"""The records of where `citylogin serve` runs (citylogin.running_services): written whole and private while
the block runs, gone after it; a record whose pid is gone, or now names another process, is stale."""
from __future__ import annotations

import dataclasses
import json
import os
import stat

from citylogin.running_services import recorded, running, runtime_dir
from common.config import load_settings


def settings_in(tmp_path, **more):
    return load_settings({"data_dir": tmp_path / "data", "runtime_dir": tmp_path / "runtime", **more}, environ={})


def test_a_record_lives_as_long_as_the_serve_and_names_it(tmp_path):
    settings = settings_in(tmp_path, table_prefix="p_")
    with recorded(settings, url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:8000") as mine:
        [path] = (tmp_path / "runtime").iterdir()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.name == f"serve-{os.getpid()}.json"
        assert running(settings) == [mine]
        assert (mine.data_dir, mine.table_prefix, mine.key_encryption) == \
            (str((tmp_path / "data").resolve()), "p_", "data_dir")
    assert running(settings) == [] and list((tmp_path / "runtime").iterdir()) == []


def test_a_pid_used_again_by_another_process_is_not_the_serve(tmp_path):
    settings = settings_in(tmp_path)
    with recorded(settings, url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:8000") as mine:
        path = next((tmp_path / "runtime").iterdir())
        path.write_text(json.dumps({**dataclasses.asdict(mine), "started": "1"}))  # this pid, an older process
        assert running(settings) == [] and not path.exists()


def test_serve_goes_on_when_its_record_cannot_be_written(tmp_path, capsys):
    (tmp_path / "runtime").write_text("a file where the folder should be")
    with recorded(settings_in(tmp_path), url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:1"):
        pass
    assert "could not record where citylogin runs" in capsys.readouterr().err


def test_the_runtime_folder_is_the_users_own():
    settings = load_settings({}, environ={})
    assert runtime_dir(settings, {"XDG_RUNTIME_DIR": "/run/user/1000"}).as_posix() == "/run/user/1000/citylogin"
    assert runtime_dir(settings, {"XDG_STATE_HOME": "/home/a/.state"}).as_posix() == "/home/a/.state/citylogin"
    assert runtime_dir(settings, {}).as_posix().endswith("/.local/state/citylogin")

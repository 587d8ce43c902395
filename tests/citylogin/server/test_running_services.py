"""The records of where `citylogin serve` runs (citylogin.server.running_services): written whole and private while
the block runs, gone after it; a record whose pid is gone, or now names another process, is stale."""
from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from citylogin.server.running_services import (RuntimeFolderRefused, check_runtime_folder, deployment_fingerprint,
                                               folder_problem, record_problem, recorded, running, runtime_dir)
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


DEFINING = {"data_dir": "other", "table_prefix": "other_", "jwt_issuer": "https://other.example",
            "dynamodb_endpoint_url": "http://127.0.0.1:8000",
            "key_encryption_key": None}  # None: the generated key of the data directory instead of one set


@pytest.mark.parametrize("setting", sorted(DEFINING) + ["url"])
def test_a_record_carries_a_fingerprint_of_its_deployment_that_any_defining_setting_changes(tmp_path, setting):
    """One deployment, one fingerprint, kept when started again; another value of any setting that defines
    it, another fingerprint. The record holds which kind of key-encryption key seals the ring, never the key."""
    secret = "A" * 43 + "="
    base = {"table_prefix": "p_", "key_encryption_key": secret}
    where = {"url": "http://localhost:5000", "dynamodb_endpoint_url": "http://127.0.0.1:8000"}
    with recorded(settings_in(tmp_path, **base), **where) as mine:
        text = next((tmp_path / "runtime").iterdir()).read_text()
    assert mine.fingerprint == deployment_fingerprint(
        url=mine.url, dynamodb_endpoint_url="", data_dir=mine.data_dir, table_prefix="p_", jwt_issuer="citylogin",
        key_encryption="setting")
    assert json.loads(text)["fingerprint"] == mine.fingerprint and secret not in text
    if setting in DEFINING:
        value = tmp_path / DEFINING[setting] if setting == "data_dir" else DEFINING[setting]
        changed = (settings_in(tmp_path, **{**base, setting: value}), where)
    else:
        changed = (settings_in(tmp_path, **base), {**where, setting: "http://localhost:5001"})
    with recorded(changed[0], **changed[1]) as other:
        assert other.fingerprint != mine.fingerprint
    again = {**where, "dynamodb_endpoint_url": "http://127.0.0.1:8001"}  # its own DynamoDB Local, on a new port
    with recorded(settings_in(tmp_path, **{**base, "key_encryption_key": "B" * 43 + "="}), **again) as restarted:
        assert restarted.fingerprint == mine.fingerprint  # the key is no part of it: nothing to guess it from


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


# The folder and its records as ssh and gpg treat theirs (issue 62). The tests run as root: "another user" is a
# folder or file given to uid 65534 (nobody) with os.chown, a shared folder is one of mode 0777.
OTHER_UID = 65534
FILE_TYPES = (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK)


@hypothesis.settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(FILE_TYPES), bits=st.integers(0, 0o7777), uid=st.sampled_from([0, 1000, OTHER_UID]),
       euid=st.sampled_from([0, 1000, OTHER_UID]))
def test_a_folder_is_accepted_only_if_it_is_the_users_own_and_no_one_else_may_write_in_it(kind, bits, uid, euid):
    folder = Path("/run/user/1000/citylogin")
    problem = folder_problem(folder, kind | bits, uid, euid)
    accepted = kind == stat.S_IFDIR and uid == euid and not bits & 0o020 and not bits & 0o002
    assert (problem is None) == accepted
    if problem is not None:
        assert "\n" not in problem and f"the runtime folder {folder} " in problem
        assert "a folder that you own and only you can write (mode 0700)" in problem
        assert ("`chmod 700 /run/user/1000/citylogin`" in problem) == (kind == stat.S_IFDIR and uid == euid)
        assert "shared" not in problem


@hypothesis.settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(FILE_TYPES), bits=st.integers(0, 0o7777), uid=st.sampled_from([0, 1000, OTHER_UID]),
       euid=st.sampled_from([0, 1000, OTHER_UID]))
def test_a_record_is_read_only_if_it_is_a_regular_file_of_the_user(kind, bits, uid, euid):
    assert (record_problem(kind | bits, uid, euid) is None) == (kind == stat.S_IFREG and uid == euid)


def the_record(tmp_path) -> Path:
    [path] = (tmp_path / "runtime").glob("serve-*.json")
    return path


@pytest.mark.parametrize("owner, mode", [(OTHER_UID, 0o777), (0, 0o777), (0, 0o775), (0, 0o772), (OTHER_UID, 0o700),
                                         (OTHER_UID, 0o1777)])
def test_a_folder_of_another_user_or_writable_by_others_is_refused_and_nothing_is_written(tmp_path, owner, mode):
    folder = tmp_path / "runtime"
    folder.mkdir()
    os.chown(folder, owner, -1)
    folder.chmod(mode)
    settings = settings_in(tmp_path)
    with pytest.raises(RuntimeFolderRefused) as refused:
        with recorded(settings, url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:8000"):
            raise AssertionError("served in a refused folder")
    assert refused.value.message == folder_problem(folder, stat.S_IFDIR | mode, owner, os.geteuid())
    assert list(folder.iterdir()) == []
    with pytest.raises(RuntimeFolderRefused):
        running(settings)
    with pytest.raises(RuntimeFolderRefused):
        check_runtime_folder(settings)


def test_the_folder_is_made_0700_whatever_the_umask(tmp_path):
    settings = settings_in(tmp_path)
    previous = os.umask(0)
    try:
        check_runtime_folder(settings)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "runtime").stat().st_mode) == 0o700


def test_a_record_of_another_user_is_ignored_and_said_so(tmp_path, capsys):
    settings = settings_in(tmp_path)
    with recorded(settings, url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:8000") as mine:
        assert running(settings) == [mine]  # the same file, the user's: used
        os.chown(the_record(tmp_path), OTHER_UID, -1)
        capsys.readouterr()
        assert running(settings) == []
        assert capsys.readouterr().err == (f"ignored {the_record(tmp_path)}: it belongs to uid {OTHER_UID}, not to you "
                                           f"(uid {os.geteuid()}); remove it\n")
        assert the_record(tmp_path).exists()  # not removed as stale either: not the user's to judge


def test_a_record_that_is_a_link_or_a_fifo_is_ignored_and_not_followed(tmp_path, capsys):
    settings = settings_in(tmp_path)
    with recorded(settings, url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:8000") as mine:
        elsewhere = tmp_path / "elsewhere.json"
        the_record(tmp_path).rename(elsewhere)
        linked = tmp_path / "runtime" / f"serve-{os.getpid()}.json"
        linked.symlink_to(elsewhere)
        os.mkfifo(tmp_path / "runtime" / "serve-fifo.json")  # opened for reading, it would wait for a writer
        capsys.readouterr()
        assert running(settings) == []
        err = capsys.readouterr().err
        assert f"ignored {linked}: it is a symbolic link; remove it\n" in err
        assert f"ignored {tmp_path / 'runtime' / 'serve-fifo.json'}: it is not a regular file; remove it\n" in err
        elsewhere.replace(linked)  # the same content, as the user's own file: used
        assert running(settings) == [mine]
        (tmp_path / "runtime" / "serve-fifo.json").unlink()


def test_a_planted_link_under_a_record_or_temporary_name_never_redirects_the_write(tmp_path):
    folder, victim = tmp_path / "runtime", tmp_path / "victim"
    folder.mkdir(mode=0o700)
    victim.write_text("root's file")
    pid = os.getpid()
    planted = [folder / f".serve-{pid}.json.tmp", folder / f".serve-{pid}.json.{pid}.tmp", folder / f"serve-{pid}.json"]
    for name in planted:
        name.symlink_to(victim)
    settings = settings_in(tmp_path)
    with recorded(settings, url="http://localhost:5000", dynamodb_endpoint_url="http://127.0.0.1:8000") as mine:
        record = folder / f"serve-{pid}.json"
        assert not record.is_symlink() and stat.S_IMODE(record.lstat().st_mode) == 0o600
        assert running(settings) == [mine]
        assert all(name.is_symlink() for name in planted[:2])
    assert victim.read_text() == "root's file"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in planted[:2])

"""The previous release beside the current code, as during a rolling deploy: its tag checked out
into a detached git worktree, and its all-in-one app run by this same interpreter but importing
the old packages (PYTHONPATH and the working directory are the worktree, which come before the
editable install of the current checkout on sys.path). The current checkout is never touched:
the worktree lives in a temporary directory and is removed, and pruned, however the test ends."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.ports import free_port
from tests.support.services import running_process

REPO = Path(__file__).resolve().parents[2]


def _git(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


# Each release's tag and commit (CHANGELOG.md), as pyproject.toml records them for citylogin.cli.release: a
# clone without the tags still has the commit.
RELEASES: dict[str, str] = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["citylogin"][
    "releases"]


def release_commit(tag: str) -> str:
    """The commit of release `tag`: its tag, else the commit recorded for it. A shallow clone
    fetches the history it lacks; if that cannot be had, the test is skipped, saying why."""
    commit = _git("rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}").stdout.strip() or RELEASES[tag]
    if _git("cat-file", "-e", f"{commit}^{{tree}}").returncode != 0:
        _git("fetch", "--quiet", "--unshallow", "--tags")
    if _git("cat-file", "-e", f"{commit}^{{tree}}").returncode != 0:
        pytest.skip(f"release {tag} ({commit[:12]}) is not in this clone (a shallow clone?)")
    return commit


@contextmanager
def release_worktree(tag: str, parent: Path) -> Iterator[Path]:
    """`tag` checked out, detached, into a fresh directory under `parent`; removed and pruned on exit."""
    commit = release_commit(tag)
    tree = parent / f"release-{tag}"
    added = _git("worktree", "add", "--detach", str(tree), commit)
    try:
        assert added.returncode == 0, f"git worktree add of {tag} failed: {added.stderr.strip()[-500:]}"
        checked_out = _git("rev-parse", "HEAD", cwd=tree).stdout.strip()
        assert checked_out == commit, f"the worktree is at {checked_out}, not {tag} ({commit})"
        yield tree
    finally:
        _git("worktree", "remove", "--force", str(tree))
        _git("worktree", "prune")


def code_environment(tree: Path) -> dict[str, str]:
    """What makes this interpreter import the packages of `tree` rather than the installed checkout."""
    return {"PYTHONPATH": str(tree)}


def imported_from(module: str, *, env: dict[str, str], cwd: Path) -> Path:
    """Where `import <module>` finds it for a process started with `env` in `cwd` (the interpreter of
    the server processes, and this process's environment but its CITYLOGIN_* settings)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | env
    done = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__file__)"], env=full_env,
                          cwd=cwd, capture_output=True, text=True, timeout=60, check=True)
    return Path(done.stdout.strip()).resolve()


@contextmanager
def running_all_in_one(env: dict[str, str], *, cwd: Path, timeout: float = 60.0) -> Iterator[str]:
    """`python -m citylogin serve` with `env` in `cwd` on 127.0.0.1:<free port>; yields its base URL."""
    port = free_port()
    with running_process([sys.executable, "-m", "citylogin", "serve"], port=port, cwd=cwd, timeout=timeout,
                         env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)}) as url:
        yield url

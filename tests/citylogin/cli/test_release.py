"""The release script (citylogin/cli/release.py, issue 65 item 6) on a temporary git repository: CHANGELOG.md's
releases become annotated tags on their commits (a recorded one, or HEAD for the newest), a second run
makes nothing, --dry-run makes nothing, and it refuses a dirty tree, a version pyproject.toml does not
have, a malformed heading, a tag on another commit, and a release it cannot place."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from citylogin.cli.release import ReleaseError, changelog_releases

IDENTITY = {"GIT_AUTHOR_NAME": "Releaser", "GIT_AUTHOR_EMAIL": "releaser@example.com",
            "GIT_COMMITTER_NAME": "Releaser", "GIT_COMMITTER_EMAIL": "releaser@example.com"}
HEADER = "# Changelog\n\nEach release is a git tag `vX.Y.Z` on main.\n\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=60,
                          env={**os.environ, **IDENTITY}).stdout.strip()


def commit(repo: Path, *, version: str, changelog: str, releases: dict[str, str] | None = None) -> str:
    recorded = "".join(f'"{tag}" = "{sha}"\n' for tag, sha in (releases or {}).items())
    (repo / "pyproject.toml").write_text(f'[project]\nname = "x"\nversion = "{version}"\n\n'
                                         f"[tool.citylogin.releases]\n{recorded}")
    (repo / "CHANGELOG.md").write_text(HEADER + changelog)
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", f"version {version}")
    return git(repo, "rev-parse", "HEAD")


def release(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "citylogin.cli.release", "--repo", str(repo), *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **IDENTITY})


def tags(repo: Path) -> dict[str, str]:
    """tag -> the commit it names."""
    return {tag: git(repo, "rev-parse", f"{tag}^{{commit}}") for tag in git(repo, "tag").split()}


@pytest.fixture
def repo(tmp_path) -> Path:
    """0.1.0 released at its commit, then 0.2.0's release commit at HEAD, 0.1.0's commit recorded."""
    git(tmp_path, "init", "--quiet")
    first = commit(tmp_path, version="0.1.0", changelog="## 0.1.0 (v0.1.0)\n\nThe first.\n")
    (tmp_path / "code.py").write_text("print('later work')\n")
    commit(tmp_path, version="0.2.0", changelog="## 0.2.0 (v0.2.0)\n\nMore.\n\n## 0.1.0 (v0.1.0)\n\nThe first.\n",
           releases={"v0.1.0": first})
    return tmp_path


def test_the_changelogs_releases_become_annotated_tags_on_their_commits(repo):
    first, head = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")
    done = release(repo)
    assert done.returncode == 0, done.stderr
    assert tags(repo) == {"v0.1.0": first, "v0.2.0": head}
    assert git(repo, "cat-file", "-t", "v0.2.0") == "tag"                  # annotated
    assert git(repo, "tag", "-l", "--format=%(contents:subject)", "v0.2.0") == "citylogin 0.2.0"
    assert done.stdout.splitlines()[:3] == [f"v0.1.0: tagged {first[:12]}", f"v0.2.0: tagged {head[:12]}",
                                            "push them with: git push origin v0.1.0 v0.2.0"]
    assert f'"v0.2.0" = "{head}"' in done.stdout                           # to record for tagless clones


def test_a_second_run_makes_nothing(repo):
    assert release(repo).returncode == 0
    before = {tag: git(repo, "rev-parse", tag) for tag in tags(repo)}    # the tag objects themselves
    again = release(repo)
    assert again.returncode == 0, again.stderr
    assert {tag: git(repo, "rev-parse", tag) for tag in tags(repo)} == before
    assert [line.split(": ")[1].split()[0] for line in again.stdout.splitlines()[:2]] == ["already", "already"]
    assert "push them" not in again.stdout


def test_a_dry_run_says_what_it_would_make_and_makes_nothing(repo):
    done = release(repo, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert tags(repo) == {}
    assert done.stdout.splitlines()[:2] == [f"v0.1.0: would tag {git(repo, 'rev-parse', 'HEAD~1')[:12]}",
                                            f"v0.2.0: would tag {git(repo, 'rev-parse', 'HEAD')[:12]}"]


@pytest.mark.parametrize("dirt", ["changed", "staged", "untracked"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
def test_a_dirty_tree_is_refused(repo, dirt, dry_run):
    if dirt == "untracked":
        (repo / "new.txt").write_text("x")
    else:
        (repo / "code.py").write_text("print('changed')\n")
        if dirt == "staged":
            git(repo, "add", "code.py")
    done = release(repo, *(["--dry-run"] if dry_run else []))
    assert done.returncode == 1 and "uncommitted changes" in done.stderr, done.stderr
    assert tags(repo) == {}


def test_a_version_pyproject_does_not_have_is_refused(repo):
    commit(repo, version="0.3.0", changelog="## 0.2.0 (v0.2.0)\n\nMore.\n\n## 0.1.0 (v0.1.0)\n\nThe first.\n",
           releases={"v0.1.0": git(repo, "rev-parse", "HEAD~1")})
    done = release(repo)
    assert done.returncode == 1, done.stdout
    assert "pyproject.toml's version is 0.3.0, but CHANGELOG.md's newest release is 0.2.0" in done.stderr
    assert tags(repo) == {}


def test_a_tag_on_another_commit_is_never_moved(repo):
    git(repo, "tag", "v0.1.0", "HEAD")                      # the record says HEAD~1
    done = release(repo)
    assert done.returncode == 1 and "a tag is never moved" in done.stderr, done.stderr
    assert tags(repo) == {"v0.1.0": git(repo, "rev-parse", "HEAD")}     # and v0.2.0 not made either


def test_a_release_neither_recorded_nor_at_head_is_refused(repo):
    commit(repo, version="0.2.0", changelog="## Unreleased\n\n- next\n\n## 0.2.0 (v0.2.0)\n\nMore.\n\n"
                                            "## 0.1.0 (v0.1.0)\n\nThe first.\n",
           releases={"v0.1.0": git(repo, "rev-parse", "HEAD~1")})
    done = release(repo)
    assert done.returncode == 1 and "v0.2.0 has no tag and no commit recorded" in done.stderr, done.stderr
    assert tags(repo) == {}


@pytest.mark.parametrize("heading", ["## 0.3 (v0.3)", "## 0.3.0 (v0.3.1)", "## 0.3.0", "## v0.3.0 (v0.3.0)"])
def test_a_heading_that_is_not_a_release_is_refused(heading):
    with pytest.raises(ReleaseError, match="is not a release"):
        changelog_releases(f"{HEADER}{heading}\n\n## 0.1.0 (v0.1.0)\n")


def test_the_repositorys_own_changelog_and_pyproject_agree():
    """This repository's CHANGELOG.md names its releases as the script reads them."""
    root = Path(__file__).resolve().parents[3]
    releases, _ = changelog_releases((root / "CHANGELOG.md").read_text(encoding="utf-8"))
    from common.version import running_version
    assert releases and releases[0][0] == running_version()

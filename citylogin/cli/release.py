"""`python -m citylogin.cli.release [--dry-run]`: the git tags of CHANGELOG.md's releases (docs/reference/cli.md,
"Releasing"). Each `## X.Y.Z (vX.Y.Z)` heading is a release and its tag; the newest must be pyproject.toml's
`version`, the version the installed citylogin says it is (common/version.py).

A release's commit is the one pyproject.toml's `[tool.citylogin.releases]` records for its tag (so a clone
without the tags still knows it: tests/support/previous_release.py reads the same table), else, for the
newest release alone, HEAD, when HEAD is that release (CHANGELOG.md has no `## Unreleased` section yet).
Tags are annotated and never moved: a tag that exists is checked, not made again, so a second run does
nothing; one on another commit than recorded is an error to resolve by hand. Nothing is pushed. A working
tree with uncommitted changes is refused, with --dry-run too: the files read are HEAD's."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click

HEADING = re.compile(r"^## (?P<title>.+?)\s*$", re.MULTILINE)
RELEASE = re.compile(r"(?P<version>\d+\.\d+\.\d+) \((?P<tag>v\d+\.\d+\.\d+)\)")
UNRELEASED = "Unreleased"


class ReleaseError(Exception):
    """The repository is not in a state to tag: the message says what to do."""


@dataclass(frozen=True)
class Step:
    tag: str
    commit: str
    exists: bool           # the tag is there already, on `commit`
    recorded: bool         # pyproject.toml names `commit` for the tag

    def line(self, *, dry_run: bool) -> str:
        if self.exists:
            return f"{self.tag}: already tags {self.commit[:12]}"
        return f"{self.tag}: {'would tag' if dry_run else 'tagged'} {self.commit[:12]}"


def git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def changelog_releases(text: str) -> tuple[list[tuple[str, str]], bool]:
    """([(version, tag)] newest first, whether an Unreleased section stands above them). A heading that
    names a version in another form is an error, not a section skipped."""
    releases: list[tuple[str, str]] = []
    unreleased = False
    for heading in HEADING.finditer(text):
        title = heading["title"]
        if title == UNRELEASED:
            unreleased = unreleased or not releases
            continue
        release = RELEASE.fullmatch(title)
        if release is None or release["tag"] != f"v{release['version']}":
            raise ReleaseError(f"CHANGELOG.md: the heading {heading[0].strip()!r} is not a release: "
                               "write `## X.Y.Z (vX.Y.Z)` (or `## Unreleased`)")
        if any(version == release["version"] for version, _ in releases):
            raise ReleaseError(f"CHANGELOG.md names {release['version']} twice")
        releases.append((release["version"], release["tag"]))
    return releases, unreleased


def plan(repo: Path) -> list[Step]:
    """The tags to make (and those there already), oldest first; ReleaseError if any cannot be."""
    if git(repo, "status", "--porcelain"):
        raise ReleaseError("the working tree has uncommitted changes: commit or stash them first "
                           "(the tags name commits, not files)")
    pyproject = tomllib.loads(git(repo, "show", "HEAD:pyproject.toml"))
    version = pyproject["project"]["version"]
    recorded = pyproject.get("tool", {}).get("citylogin", {}).get("releases", {})
    releases, unreleased = changelog_releases(git(repo, "show", "HEAD:CHANGELOG.md"))
    if not releases:
        raise ReleaseError("CHANGELOG.md has no release heading (`## X.Y.Z (vX.Y.Z)`)")
    if releases[0][0] != version:
        raise ReleaseError(f"pyproject.toml's version is {version}, but CHANGELOG.md's newest release is "
                           f"{releases[0][0]}: make them one")
    head = git(repo, "rev-parse", "HEAD")
    steps = []
    for index, (_, tag) in reversed(list(enumerate(releases))):
        steps.append(_step(repo, tag, recorded.get(tag), head=head if index == 0 and not unreleased else None))
    return steps


def _step(repo: Path, tag: str, recorded: str | None, *, head: str | None) -> Step:
    tagged = git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}", check=False)
    wanted = recorded and git(repo, "rev-parse", "--verify", "--quiet", f"{recorded}^{{commit}}", check=False)
    if recorded and not wanted:
        raise ReleaseError(f"{tag}: the commit pyproject.toml records, {recorded[:12]}, is not in this repository")
    if tagged:
        if wanted and tagged != wanted:
            raise ReleaseError(f"{tag} tags {tagged[:12]}, but pyproject.toml records {wanted[:12]}: a tag is "
                               "never moved here; see which is right and change the other by hand")
        return Step(tag, tagged, exists=True, recorded=bool(wanted))
    commit = wanted or head
    if not commit:
        raise ReleaseError(f"{tag} has no tag and no commit recorded in pyproject.toml's "
                           "[tool.citylogin.releases], and HEAD is not that release (CHANGELOG.md has an "
                           "Unreleased section): record its commit there")
    return Step(tag, commit, exists=False, recorded=bool(wanted))


def make_tags(repo: Path, steps: list[Step]) -> None:
    for step in steps:
        if not step.exists:
            git(repo, "tag", "--annotate", step.tag, step.commit, "--message", f"citylogin {step.tag[1:]}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Say which tags would be made; make none.")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="The repository (any folder in it).")
def main(dry_run: bool, repo: Path) -> None:
    """Tag CHANGELOG.md's releases: each `## X.Y.Z (vX.Y.Z)` as vX.Y.Z on its commit."""
    try:
        root = Path(git(repo, "rev-parse", "--show-toplevel"))
        steps = plan(root)
        if not dry_run:
            make_tags(root, steps)
    except ReleaseError as exc:
        click.echo(f"release: {exc}", err=True)
        sys.exit(1)
    for step in steps:
        click.echo(step.line(dry_run=dry_run))
    made = [step.tag for step in steps if not step.exists]
    if made and not dry_run:
        click.echo(f"push them with: git push origin {' '.join(made)}")
    newest = steps[-1]
    if not newest.recorded:   # a clone without the tags finds it there (tests/support/previous_release.py)
        click.echo(f'then record it in pyproject.toml\'s [tool.citylogin.releases]: "{newest.tag}" = "{newest.commit}"')


if __name__ == "__main__":
    main()

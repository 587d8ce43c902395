"""Which citylogin runs: the installed distribution's version (pyproject.toml's `version`, as pip
installed it), the one answer `citylogin --version`, `GET /healthz`, the console's footer and `citylogin
serve`'s first line give. Read from the installed metadata rather than written here, so a release
changes it in one place (pyproject.toml) and CHANGELOG.md's tag (citylogin/cli/release.py) is checked
against that same place."""
from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "citylogin"
# Code run from a folder that pip never installed (a copy on PYTHONPATH) has no metadata to read.
UNKNOWN = "unknown"


@cache
def running_version() -> str:
    """The installed citylogin's version, e.g. "0.1.0"; "unknown" when the code runs uninstalled."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN

"""The Django relying parties (tests/interop/django), each unmodified in its own process: Django's own
server on 127.0.0.1 from the virtual environment that scripts/setup.sh --tests installs from
tests/interop/django/requirements.lock, with a fresh SQLite database and secret key."""
from __future__ import annotations

import os
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from tests.support.services import running_process

SITES = Path(__file__).resolve().parents[1] / "interop" / "django"
PYTHON = SITES / ".venv" / "bin" / "python"


def django_python() -> str:
    """The Django apps' interpreter; a skip without it, and a failure under CI (setup.sh must have run)."""
    if PYTHON.exists():
        return str(PYTHON)
    message = f"{PYTHON} is missing: run `bash scripts/setup.sh --tests` to install the Django relying parties"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_django(site: str, *, port: int, data: Path, env: dict[str, str],
                   settings: str = "settings") -> Iterator[str]:
    """`<site>.<settings>` (mozilla_site, social_site) with `env` on 127.0.0.1:`port`, its database
    migrated first; yields its URL."""
    python = django_python()
    env = {**env, "DJANGO_SETTINGS_MODULE": f"{site}.{settings}", "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
           "DJANGO_DATABASE": str(data / f"{site}.sqlite3"), "PYTHONDONTWRITEBYTECODE": "1"}
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYLOGIN_", "DJANGO_"))} | env
    migrated = subprocess.run([python, "-m", "django", "migrate", "--verbosity", "0"], cwd=SITES, env=full_env,
                              capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    argv = [python, "-m", "django", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"]
    with running_process(argv, port=port, env=env, cwd=SITES, timeout=60) as url:
        yield url

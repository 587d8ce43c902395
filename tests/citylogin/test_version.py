"""Which citylogin runs (issue 65, item 6): one source, the installed distribution's version (pyproject's
`version`), said by `citylogin --version`, `GET /healthz` and the console's footer (`citylogin serve`'s
first line:
tests/citylogin/server/test_serve_gunicorn.py; the footer in Chromium: tests/browser/test_admin_console.py)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner

import common.version
from citylogin.app import create_app
from citylogin.cli.main import main
from common.version import running_version

ROOT = Path(__file__).resolve().parents[2]


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@pytest.fixture(scope="module")
def client(dynamodb_endpoint, data_dir, table_prefix):
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "WARNING"})
    return app.test_client()


@pytest.fixture
def another_version(monkeypatch):
    """The installed distribution as if it were 9.8.7: what follows it reads the one source."""
    monkeypatch.setattr(common.version, "version", lambda name: "9.8.7" if name == "citylogin" else None)
    running_version.cache_clear()
    yield "9.8.7"
    running_version.cache_clear()


def test_the_installed_version_is_pyprojects():
    assert running_version() == pyproject_version()


def test_citylogin_version_prints_it():
    done = subprocess.run([sys.executable, "-m", "citylogin", "--version"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"citylogin {pyproject_version()}\n", "")


def test_healthz_says_the_version_and_keeps_its_status(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": pyproject_version()}


def test_the_consoles_footer_carries_the_version(client):
    page = client.get("/admin/").get_data(as_text=True)
    assert "@VERSION@" not in page
    footer = page[page.index('<footer class="console-footer">'):page.index("</footer>")]
    assert unescape(footer).count(f"""data-i18n-params='{{"version": "{pyproject_version()}"}}'""") == 1
    assert 'data-i18n="web.admin.version"' in footer


def test_every_place_reads_the_one_source(client, another_version):
    assert CliRunner().invoke(main, ["--version"]).output == f"citylogin {another_version}\n"
    assert client.get("/healthz").get_json()["version"] == another_version

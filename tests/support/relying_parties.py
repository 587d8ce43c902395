"""What the tests of relying-party libraries at their defaults share (SPEC §14 Interoperability): citylogin
serving on a free port, apps added by its CLI, the npm libraries' folder, and a browser's view of an app
through the app's own cookies."""
from __future__ import annotations

import base64
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import config_env, unique_name
from tests.support.ports import free_port
from tests.support.services import running_process

INTEROP = Path(__file__).resolve().parents[1] / "interop"


def require_npm_package(name: str) -> None:
    """Fail (in CI) or skip without the npm package `name` installed under tests/interop, or without node."""
    if (INTEROP / "node_modules" / name / "package.json").exists() and shutil.which("node"):
        return
    message = f"npm {name} is not installed (bash scripts/setup.sh --tests installs it under tests/interop with npm ci)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def running_citylogin(dynamodb_endpoint: str, data_dir: Path, *, prefix: str) -> Iterator[tuple[str, dict[str, str]]]:
    """`citylogin serve` at its default settings on 127.0.0.1:<free port>; yields (its URL, its environment)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name(prefix) + "_",
                         "data_dir": data_dir, "log_level": "WARNING"}),
           "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port), "CITYLOGIN_PUBLIC_URL": url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with running_process([sys.executable, "-m", "citylogin", "serve"], port=port, env=env, timeout=60):
        yield url, env


def app_view(page, url: str, **kwargs) -> requests.Response:
    """GET `url` with the browser context's cookies (what the app would answer this browser), not followed."""
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies(url)}
    return requests.get(url, cookies=cookies, allow_redirects=False, timeout=10, **kwargs)

"""The Dockerfile (no engine here, so read, not built): every product package goes into the image,
installed from the lock file, served by gunicorn as a non-root user."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text().splitlines()


def instructions(keyword: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(keyword + " ")]


def product_packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]


def test_every_product_package_is_copied_and_not_ignored():
    copied = {args.split()[0] for args in instructions("COPY")}
    for package in product_packages():
        assert package in copied, package
        assert f"!{package}/" in DOCKERIGNORE, package


def test_dependencies_come_from_the_lock_file_before_the_package():
    runs = instructions("RUN")
    lock = next(i for i, r in enumerate(runs) if "-r requirements.lock" in r)
    package = next(i for i, r in enumerate(runs) if "pip install --no-deps ." in r)
    assert lock < package and "--require-hashes" in runs[lock]
    assert "!requirements.lock" in DOCKERIGNORE


def test_gunicorn_serves_the_app_as_a_non_root_user():
    assert instructions("FROM") == ["python:3.11-slim"]
    assert instructions("USER") == ["citylogin"]
    assert DOCKERFILE.index("USER citylogin") < DOCKERFILE.index("CMD ")
    command = json.loads(instructions("CMD")[0])
    assert command[0] == "gunicorn" and command[-1] == "citylogin.app:create_app()"
    expected = {"--bind": "0.0.0.0:8000", "--worker-class": "citylogin.server.gunicorn_worker.ThreadWorker",
                "--workers": "2", "--threads": "32"}
    assert expected.items() <= dict(zip(command[1:-1:2], command[2:-1:2], strict=False)).items()
    assert "/healthz" in instructions("HEALTHCHECK")[0]

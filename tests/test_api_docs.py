"""docs/api.md documents every route of the all-in-one app and every error code, and, like the
README, never points the reader outside the repository."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from citylogin.app import create_app
from common.errors import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
# The web UI's page and assets are not API routes.
NOT_API_ENDPOINTS = {"static", "web_ui.index", "web_ui.static"}
# "### `POST /login/`" headings, or "| `POST /login/` |" table rows.
DOCUMENTED_ROUTE = re.compile(r"^(?:###\s+|\|\s*)`([A-Z]+) (/[^`\s]*)`", re.MULTILINE)
# "| `code` | 409 | meaning |" rows of the error code table ("—" for a code no route sends).
DOCUMENTED_CODE = re.compile(r"^\|\s*`([a-z_]+)`\s*\|\s*(?:\d{3}|—)\s*\|", re.MULTILINE)
OUTSIDE_REFERENCES = re.compile(r"\bSPEC\b|\.\./shared|/work/shared|\b[Tt]he spec\b")


def doc_path(rule: str) -> str:
    """Flask's `/device/<uuid:device_id>` as the doc writes it: `/device/{device_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


@pytest.fixture(scope="module")
def app(dynamodb_endpoint, data_dir, table_prefix):
    return create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                       "table_prefix": table_prefix, "log_level": "WARNING"})


def api_routes(app) -> set[str]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in NOT_API_ENDPOINTS or rule.endpoint.startswith("web_ui."):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add(f"{method} {doc_path(rule.rule)}")
    return routes


def documented_routes(text: str) -> set[str]:
    return {f"{method} {path}" for method, path in DOCUMENTED_ROUTE.findall(text)}


def test_every_route_is_documented(app):
    missing = sorted(api_routes(app) - documented_routes(API_DOC.read_text(encoding="utf-8")))
    assert not missing, ("routes without a '### `METHOD /path`' heading in docs/api.md: "
                         + ", ".join(missing))


def test_every_error_code_is_in_the_table():
    documented = set(DOCUMENTED_CODE.findall(API_DOC.read_text(encoding="utf-8")))
    missing = sorted(code.value for code in ErrorCode if code.value not in documented)
    assert not missing, "error codes without a '| `code` |' row in docs/api.md: " + ", ".join(missing)


def test_path_conversion():
    assert doc_path("/device/<uuid:device_id>") == "/device/{device_id}"
    assert doc_path("/session/<session_id>") == "/session/{session_id}"
    assert doc_path("/login/") == "/login/"


@pytest.mark.parametrize("path", ["README.md", *sorted(p.relative_to(ROOT).as_posix()
                                                      for p in (ROOT / "docs").glob("*.md"))])
def test_the_docs_do_not_point_outside_the_repository(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    found = sorted({m.group(0) for m in OUTSIDE_REFERENCES.finditer(text)})
    assert not found, f"{path} refers outside the repository: {found}"

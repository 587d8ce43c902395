"""docs/reference/http-api.md documents every route of the all-in-one app, docs/reference/errors.md every
error code and session end reason, and no page of the site, like the README, points the reader outside
the repository."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from citylogin.app import create_app
from common.errors import ErrorCode
from sessions.models import RevokeReason

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "reference" / "http-api.md"
ERRORS_DOC = ROOT / "docs" / "reference" / "errors.md"
# The web UI's page and assets are not API routes.
NOT_API_ENDPOINTS = {"static", "web_ui.index", "web_ui.static"}
# "### `POST /login/`" headings, or "| `POST /login/` |" table rows.
DOCUMENTED_ROUTE = re.compile(r"^(?:###\s+|\|\s*)`([A-Z]+) (/[^`\s]*)`", re.MULTILINE)
# "| `code` | 409 | meaning |" rows of the error code table ("—" for a code no route sends).
DOCUMENTED_CODE = re.compile(r"^\|\s*`([a-z_]+)`\s*\|\s*(?:\d{3}|—)\s*\|", re.MULTILINE)
# "| `reason` | the session ended because |" rows of the session end reasons table.
DOCUMENTED_ROW = re.compile(r"^\|\s*`([a-z_]+)`\s*\|", re.MULTILINE)
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
    assert not missing, ("routes without a '### `METHOD /path`' heading in docs/reference/http-api.md: "
                         + ", ".join(missing))


def test_every_error_code_is_in_the_table():
    documented = set(DOCUMENTED_CODE.findall(section(ERRORS_DOC, "## Error codes")))
    missing = sorted(code.value for code in ErrorCode if code.value not in documented)
    assert not missing, "error codes without a '| `code` |' row in docs/reference/errors.md: " + ", ".join(missing)


def test_every_session_end_reason_is_in_the_table():
    documented = set(DOCUMENTED_ROW.findall(section(ERRORS_DOC, "## Session end reasons")))
    reasons = {value for name, value in vars(RevokeReason).items() if name.isupper()}
    assert reasons and sorted(reasons - documented) == []


def section(path: Path, heading: str) -> str:
    """The text of a page from `heading` to the next heading of its level."""
    text = path.read_text(encoding="utf-8")
    assert heading + "\n" in text, f"{path.relative_to(ROOT)} has no '{heading}'"
    level = heading.split(" ")[0]
    return text.split(heading + "\n", 1)[1].split(f"\n{level} ", 1)[0]


def test_path_conversion():
    assert doc_path("/device/<uuid:device_id>") == "/device/{device_id}"
    assert doc_path("/session/<session_id>") == "/session/{session_id}"
    assert doc_path("/login/") == "/login/"


@pytest.mark.parametrize("path", ["README.md", *sorted(p.relative_to(ROOT).as_posix()
                                                      for p in (ROOT / "docs").rglob("*.md"))])
def test_the_docs_do_not_point_outside_the_repository(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    found = sorted({m.group(0) for m in OUTSIDE_REFERENCES.finditer(text)})
    assert not found, f"{path} refers outside the repository: {found}"

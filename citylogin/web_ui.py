"""The browser app: index.html at `/`, its modules and stylesheet under `/web/`, the web UI's part
of the translation catalogues (common/locales/<lang>.json) at `/web/locales/<lang>.json`, and the web
SDK it is built on at `/sdk/` (docs/sdk.md), which other origins in CITYLOGIN_CORS_ORIGINS import too."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, request, send_from_directory

import common

bp = Blueprint("web_ui", __name__, static_folder="web", static_url_path="/web")

LOCALES_DIR = Path(common.__file__).resolve().parent / "locales"
LOCALES = ("en", "ja")
SDK_DIR = Path(__file__).resolve().parent / "sdk"
# A module script needs a JavaScript type (RFC 9239); the declaration file is TypeScript source.
SDK_TYPES = {".js": "text/javascript", ".ts": "application/typescript"}

# Everything the page loads is same-origin; the QR code arrives as a data: URI (SPEC §4).
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
    "frame-ancestors 'none'",
])


@bp.get("/")
def index():
    response = send_from_directory(bp.static_folder, "index.html", max_age=0)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response


@cache
def _web_catalogue(locale: str) -> bytes:
    # The catalogue also holds the server's "error." and "mail." texts; the page needs only its own.
    messages = json.loads((LOCALES_DIR / f"{locale}.json").read_text(encoding="utf-8"))
    return json.dumps({k: v for k, v in messages.items() if k.startswith("web.")}, ensure_ascii=False).encode()


@bp.get("/web/locales/<locale>.json")
def catalogue(locale: str):
    if locale not in LOCALES:
        abort(404)
    response = Response(_web_catalogue(locale), mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"     # revalidated by its ETag: a new release shows at once
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/sdk/<name>")
def sdk(name: str):
    mimetype = SDK_TYPES.get(Path(name).suffix)
    if mimetype is None:
        abort(404)
    response = send_from_directory(SDK_DIR, name, mimetype=mimetype, max_age=0)
    response.headers["Cache-Control"] = "no-cache"     # revalidated: a new release reaches every app at once
    return response


@bp.after_request
def _harden(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # The pairing payload may sit in the URL fragment; no page address ever leaves in a Referer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response

"""The browser app: index.html at `/`, its modules and stylesheet under `/web/`."""
from __future__ import annotations

from flask import Blueprint, send_from_directory

bp = Blueprint("web_ui", __name__, static_folder="web", static_url_path="/web")

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


@bp.after_request
def _harden(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # The pairing payload may sit in the URL fragment; no page address ever leaves in a Referer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response

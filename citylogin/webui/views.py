"""The browser app: index.html at `/` (and at `/device`, where a TV's code is approved) and the operators'
console (admin.html) at `/admin/`, their modules and stylesheets under `/web/`, the web UI's part of the
translation catalogues (common/locales/<lang>.json) at `/web/locales/<lang>.json` (the console's at
`/web/locales/admin/<lang>.json`), and the web SDK it is built on at `/sdk/` (docs/guides/web-sdk.md), which
other origins in CITYLOGIN_CORS_ORIGINS import too.

Every file is gzip-compressed for a client that takes it (web_assets.py compresses once, at start).
The page itself and the plain addresses (`/sdk/citylogin.js`, which apps on other origins import, and
`/web/app.js`) are revalidated on every use; the fingerprinted addresses the page loads
(`/web/app.<hash>.js`) are cached for a year as immutable, so a reload asks for the page alone.
The files are the app's brand's (common/brand.py, web_assets.py): its catalogues, stylesheet and logo."""
from __future__ import annotations

from flask import Blueprint, Response, abort, request
from flask.blueprints import BlueprintSetupState

from relying_parties.registry import allowed_logo_origins
from citylogin.webui.assets import BRAND_LOGO, Asset, WebAssets, chosen_encoding, web_assets, with_image_sources
from common.runtime.context import EXTENSION_KEY, ctx

bp = Blueprint("web_ui", __name__)
# The fingerprinted files can never change under their address; the rest is revalidated by its ETag,
# so a new release shows (and reaches every app importing the SDK) at once.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# The brand's logo opened at its own address is a document of this origin: an SVG there runs nothing.
LOGO_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@bp.record_once
def _build_assets(state: BlueprintSetupState) -> None:
    """Reads and compresses the files when the app is made, not on a request."""
    web_assets(state.app.extensions[EXTENSION_KEY].brand)


def _assets() -> WebAssets:
    return web_assets(ctx().brand)


def _send(asset: Asset, *, fingerprinted: bool) -> Response:
    """The file in the encoding the client takes, or 304 when its copy has that encoding's ETag."""
    offered = asset.fingerprinted if fingerprinted else asset.plain
    encoding = chosen_encoding(request.accept_encodings, offered)
    encoded = offered[encoding]
    if request.if_none_match.contains_weak(encoded.etag):     # If-None-Match compares weakly (RFC 9110)
        response = Response(status=304)
    else:
        response = Response(encoded.body, mimetype=asset.mimetype)
        if encoding != "identity":
            response.headers["Content-Encoding"] = encoding
    response.vary.add("Accept-Encoding")
    response.set_etag(encoded.etag)
    response.headers["Cache-Control"] = IMMUTABLE if fingerprinted else REVALIDATE
    return response


@bp.get("/")
def index() -> Response:
    return _page("index.html")


@bp.get("/device")
def device_page() -> Response:
    """The page a TV's or a command line's code is approved on (SPEC §14, RFC 8628's verification_uri): the
    web UI itself, which loads device_flow.js there. `/device` exactly; the API under `/device/` is
    device_manager's."""
    return _page("index.html")


@bp.get("/admin/")
def admin_console() -> Response:
    """The operators' console (SPEC §15): a page of its own on the admin API, never on the login screen's
    cold load. `/admin/` exactly; the API under it is login_app's."""
    return _page("admin.html")


def _page(name: str) -> Response:
    page = _assets().pages[name]
    response = _send(page.asset, fingerprinted=False)
    policy = page.content_security_policy
    if name == "index.html":  # the sign-in and consent pages show the app's logo (SPEC §14, RFC 7591 logo_uri)
        policy = with_image_sources(policy, allowed_logo_origins(ctx()))
    response.headers["Content-Security-Policy"] = policy
    return response


@bp.get("/web/<path:name>")
def web(name: str) -> Response:
    return _file(f"/web/{name}")


@bp.get("/sdk/<path:name>")
def sdk(name: str) -> Response:
    return _file(f"/sdk/{name}")


def _file(url: str) -> Response:
    found = _assets().find(url)
    if found is None:
        abort(404)
    asset, current = found
    response = _send(asset, fingerprinted=current)
    if asset.url.startswith(BRAND_LOGO):
        response.headers["Content-Security-Policy"] = LOGO_POLICY
    return response


@bp.after_request
def _harden(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # The pairing payload may sit in the URL fragment; no page address ever leaves in a Referer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response

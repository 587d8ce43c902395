"""How the web UI's files are served: gzip when Accept-Encoding allows it (Vary, an ETag per encoding),
the page and the plain addresses revalidated, the fingerprinted addresses the page loads immutable,
304 for a copy the client already has, and nothing compressed again on a request."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
import rjsmin
from werkzeug.http import parse_accept_header

import citylogin.webui.assets as web_assets_module
from citylogin.app import create_app
from citylogin.webui.assets import chosen_encoding, statically_imported, web_assets
from common.brand import DEFAULT_BRAND

PACKAGE = Path(__file__).resolve().parents[3] / "citylogin"
APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://other.example.com"      # with two origins allowed, CORS answers vary by Origin
IMMUTABLE = "public, max-age=31536000, immutable"
GZIP = {"Accept-Encoding": "gzip, deflate, br, zstd"}
PLAIN_FILES = {"/web/app.js": PACKAGE / "webui" / "static" / "app.js",
               "/web/app.css": PACKAGE / "webui" / "static" / "app.css",
               "/sdk/citylogin.js": PACKAGE / "sdk" / "citylogin.js",
               "/sdk/citylogin.d.ts": PACKAGE / "sdk" / "citylogin.d.ts"}
MODULES = sorted([*PACKAGE.glob("webui/static/*.js"), *PACKAGE.glob("sdk/*.js")])
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def client(dynamodb_endpoint, data_dir, table_prefix):
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "WARNING", "cors_origins": [APP_ORIGIN, OTHER_ORIGIN]})
    return app.test_client()


def vary(response) -> set[str]:
    return {part.strip().lower() for line in response.headers.getlist("Vary") for part in line.split(",")}


@pytest.mark.parametrize("url", sorted(PLAIN_FILES))
def test_a_plain_address_is_the_file_compressed_and_revalidated(client, url):
    compressed = client.get(url, headers=GZIP)
    identity = client.get(url)
    assert compressed.status_code == identity.status_code == 200
    assert compressed.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in identity.headers
    assert gzip.decompress(compressed.data) == identity.data == PLAIN_FILES[url].read_bytes()
    assert int(compressed.headers["Content-Length"]) == len(compressed.data) < len(identity.data)
    assert "accept-encoding" in vary(compressed) and "accept-encoding" in vary(identity)
    assert compressed.headers["Cache-Control"] == identity.headers["Cache-Control"] == "no-cache"
    assert compressed.headers["ETag"] != identity.headers["ETag"]


def test_the_page_is_revalidated_and_loads_only_fingerprinted_addresses(client):
    page = client.get("/", headers=GZIP)
    assert page.headers["Cache-Control"] == "no-cache" and page.headers["ETag"]
    assert page.headers["Content-Encoding"] == "gzip" and "accept-encoding" in vary(page)
    html = gzip.decompress(page.data).decode()
    loaded = re.findall(r'(?:src|href)="(/(?:web|sdk)/[^"]+)"', html)
    imports = json.loads(IMPORT_MAP.search(html)[1])["imports"]
    assert "/web/app.css" in {web_assets().find(url)[0].url for url in loaded}    # type: ignore[index]
    assert {"/web/app.js", "/sdk/citylogin.js", "/web/locales/en.json", "/web/locales/ja.json"} <= set(imports)
    for url in loaded + list(imports.values()):
        answer = client.get(url, headers=GZIP)
        assert (answer.status_code, answer.headers["Cache-Control"]) == (200, IMMUTABLE), url
        assert "accept-encoding" in vary(answer) and answer.headers["Content-Encoding"] == "gzip", url


def test_the_modules_only_imported_with_import_are_mapped_but_not_preloaded(client):
    """The passkey code, the Account panel's allowed apps and its data export are fetched when first used,
    the camera's QR reader only where the browser has one, an app's sign-in and sign-out code when an
    app asks (SPEC §14), the in-use dialog when the account is at its limit (SPEC §5) and the approval of a
    TV's code on `/device` alone, and the accounts from elsewhere (SPEC §16) when the service offers providers or
    the Account panel opens (a further device's steps when a browser is led to pair), and an imported account's first
    device when "First time on citylogin?" is followed (SPEC §17), not on every cold load of the login screen."""
    html = client.get("/").get_data(as_text=True)
    imports = json.loads(IMPORT_MAP.search(html)[1])["imports"]
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)"', html))
    lazy = {"/web/passkeys.js", "/web/consents.js", "/sdk/webauthn.js", "/web/oidc.js", "/web/app_identity.js",
            "/web/oidc_logout.js", "/web/data_export.js", "/web/camera_scan.js", "/web/device_flow.js",
            "/web/in_use.js", "/web/federation.js", "/web/federation_marks.js", "/web/federation_steps.js",
            "/web/identities.js", "/web/federation_devices.js", "/web/account_reauth.js", "/web/enrol.js"}
    assert lazy <= set(imports)
    assert preloaded == {imports[url] for url in imports if url.endswith(".js") and url not in lazy}


def test_the_static_import_graph_follows_import_and_export_from_but_not_import_calls():
    sources = {
        "/web/app.js": 'import {\n  a,\n  b,\n} from "./ui.js";\nconst later = () => import("./lazy.js");\n',
        "/web/ui.js": 'export { c } from "../sdk/x.js";\nexport const NAME = "./lazy.js";\n',
        "/sdk/x.js": 'import "./y.js";\n', "/sdk/y.js": "", "/web/lazy.js": 'import { d } from "./ui.js";\n',
    }
    assert statically_imported(["/web/app.js"], sources) == {"/web/app.js", "/web/ui.js", "/sdk/x.js", "/sdk/y.js"}


def test_the_import_map_is_the_one_inline_script_the_policy_allows(client):
    page = client.get("/")
    import_map = IMPORT_MAP.search(page.get_data(as_text=True))[1]
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["Referrer-Policy"] == "no-referrer"


def test_the_console_is_a_page_of_its_own_with_its_own_map_policy_and_catalogue(client):
    """/admin/ (SPEC §15) loads its modules as the login screen does, but neither page maps the other's
    modules, and only the console's catalogue carries the web.admin.* texts: the login screen's cold
    load does not grow with the console."""
    index, console = client.get("/"), client.get("/admin/")
    assert console.status_code == 200 and console.headers["Cache-Control"] == "no-cache"
    maps = {}
    for name, page in (("index", index), ("console", console)):
        import_map = IMPORT_MAP.search(page.get_data(as_text=True))[1]
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in page.headers["Content-Security-Policy"], name
        maps[name] = json.loads(import_map)["imports"]
    assert "/web/admin.js" in maps["console"] and not any("/admin" in url for url in maps["index"])
    assert "/web/app.js" not in maps["console"] and "/web/i18n.js" in maps["console"]
    texts = {name: client.get(maps[name]["/web/locales/ja.json"]).get_json() for name in maps}
    assert texts["console"]["web.admin.search_title"] and "web.account.title" in texts["console"]
    assert not [key for key in texts["index"] if key.startswith("web.admin.")]
    assert client.get("/web/admin.html").status_code == 404


def test_the_device_page_is_the_page_and_the_device_api_stays_the_api(client):
    """`/device` (RFC 8628's verification_uri, SPEC §14) is the web UI, as `/` with its policy and caching;
    everything under `/device/` is still device_manager's API, and `/device/` is no page."""
    index, page = client.get("/", headers=GZIP), client.get("/device?user_code=BCDF-GHJK", headers=GZIP)
    assert page.status_code == 200 and page.data == index.data and page.mimetype == "text/html"
    for header in ("Content-Security-Policy", "Cache-Control", "ETag", "Content-Encoding", "X-Content-Type-Options",
                   "Referrer-Policy"):
        assert page.headers[header] == index.headers[header], header
    again = client.get("/device", headers={**GZIP, "If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    listing = client.get("/device/list")
    assert (listing.status_code, listing.mimetype, listing.get_json()["code"]) == (
        401, "application/problem+json", "invalid_token")
    assert client.get("/device/ca.pem").mimetype != "text/html"
    assert client.get("/device/").status_code == 404
    assert client.post("/device").status_code == 405


@pytest.mark.parametrize("url", ["/", "/web/app.js", "/sdk/citylogin.js", "/web/locales/ja.json", "fingerprinted"])
def test_a_copy_with_the_etag_of_its_encoding_gets_304(client, url):
    url = web_assets().by_url["/web/ui.js"].fingerprinted_url if url == "fingerprinted" else url
    for headers in (GZIP, {}):
        first = client.get(url, headers=headers)
        again = client.get(url, headers={**headers, "If-None-Match": first.headers["ETag"]})
        assert (again.status_code, again.data) == (304, b""), headers
        assert again.headers["ETag"] == first.headers["ETag"] and "accept-encoding" in vary(again)
        assert again.headers["Cache-Control"] == first.headers["Cache-Control"]
    identity_etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={**GZIP, "If-None-Match": identity_etag}).status_code == 200


def test_a_fingerprinted_module_is_the_module_minified(client):
    asset = web_assets().by_url["/sdk/citylogin.js"]
    served = client.get(asset.fingerprinted_url).get_data(as_text=True)
    source = (PACKAGE / "sdk" / "citylogin.js").read_text(encoding="utf-8")
    assert served == rjsmin.jsmin(source) and len(served) < len(source) * 0.7


@pytest.mark.parametrize("module", MODULES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_minified_module_still_parses_as_a_module(module, tmp_path):
    copy = tmp_path / (module.stem + ".mjs")
    copy.write_text(rjsmin.jsmin(module.read_text(encoding="utf-8")), encoding="utf-8")
    checked = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_an_outdated_fingerprint_gets_the_current_file_revalidated(client):
    outdated = client.get("/web/app.000000000000.js", headers=GZIP)
    assert outdated.status_code == 200 and outdated.headers["Cache-Control"] == "no-cache"
    assert gzip.decompress(outdated.data) == (PACKAGE / "webui" / "static" / "app.js").read_bytes()


@pytest.mark.parametrize("url", ["/web/nothing.000000000000.js", "/web/nothing.js", "/web/index.html",
                                 "/web/locales/fr.json", "/web/locales/en.00000000000.json", "/sdk/../web_ui.py"])
def test_an_unknown_address_is_not_found(client, url):
    response = client.get(url, headers=GZIP)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_the_sdk_varies_by_origin_and_encoding(client):
    response = client.get("/sdk/citylogin.js", headers={**GZIP, "Origin": APP_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert {"origin", "accept-encoding"} <= vary(response)


def test_nothing_is_compressed_on_a_request(client, monkeypatch):
    calls = []
    compress = gzip.compress
    monkeypatch.setattr(web_assets_module.gzip, "compress", lambda *a, **k: calls.append(1) or compress(*a, **k))
    for url in ["/", "/web/app.js", "/web/locales/en.json", web_assets().by_url["/web/app.js"].fingerprinted_url]:
        assert client.get(url, headers=GZIP).status_code == 200
    assert calls == []


@pytest.mark.parametrize(("accept", "expected"), [
    ("gzip, deflate, br, zstd", "gzip"), ("GZIP", "gzip"), ("x-gzip", "gzip"), ("*", "gzip"),
    ("br;q=1, *;q=0.5", "gzip"), ("gzip;q=0.5", "gzip"),
    ("", "identity"), ("identity", "identity"), ("deflate, br", "identity"), ("gzip;q=0", "identity"),
    ("*;q=0, identity", "identity"), ("gzip;q=0.5, identity", "identity"), ("gzip;q=0.4, *;q=0.8", "identity"),
])
def test_the_encoding_follows_the_q_values(accept, expected):
    assert chosen_encoding(parse_accept_header(accept), {"identity", "gzip"}) == expected


def test_gzip_is_not_chosen_where_it_is_not_offered():
    assert chosen_encoding(parse_accept_header("gzip"), {"identity"}) == "identity"


def test_the_default_brand_is_built_once_however_it_is_asked_for(monkeypatch):
    calls = []
    compress = gzip.compress
    assert web_assets(DEFAULT_BRAND) is web_assets()
    monkeypatch.setattr(web_assets_module.gzip, "compress", lambda *a, **k: calls.append(1) or compress(*a, **k))
    assert web_assets() is web_assets(DEFAULT_BRAND) and calls == []

"""The web UI's files as the server holds them: read, hashed and gzip-compressed once when the app is
made, each at its plain address (`/web/app.js`, revalidated, the file as it is) and at a fingerprinted
one that names its content (`/web/app.<hash>.js`, cached as immutable; a module there comes minified by
rjsmin: comments and white space are a third of the modules' compressed bytes, which a person reads
in the repository, not a browser on each cold load), and the pages (index.html, the person's app at
`/`; admin.html, the operators' console at `/admin/`) rewritten to load the latter.

The modules import each other by relative path (`./api.js`, `../sdk/citylogin.js`). Rather than
rewriting those specifiers (a change to ui.js would then change the hash of every module importing it,
and the SDK, whose plain addresses other apps load, would need a second, rewritten copy), each page
carries an import map from each plain module address to its fingerprinted one: a change to one file
changes that file's address alone, no import in any file is touched, and a module imported by its
plain address (`import("/web/api.js")`) is the page's own instance. A page's map names the modules it
can load (statically or with `import()`), not the other page's. The map also names the catalogues,
which i18n.js finds with `import.meta.resolve`: the console's map points them at its own, fuller ones
(the `web.admin.*` texts too), which the login screen's cold load never carries. The map is an inline
script, so each page's Content-Security-Policy allows it by its SHA-256 and nothing else inline. Every
module a page imports statically is preloaded; one only ever loaded by `import()` (the passkey code)
is in the map but not preloaded, so it costs a cold load nothing until it is used.

The files are built per brand (common/brand.py): a brand's catalogues (its name, its texts), its
stylesheet (`/web/brand.css`, its colours) and logo (`/web/brand-logo.svg|png`) are files like the
others, fingerprinted by their own content, and its pages load them; the default brand's files and
pages are the repository's as they are, with nothing added."""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import posixpath
import re
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Iterable

import rjsmin

import common
from common.brand import DEFAULT_BRAND, PRODUCT_NAME, STYLESHEET_URL, Brand
from common.version import running_version

WEB_DIR = Path(__file__).resolve().parent / "static"
SDK_DIR = Path(__file__).resolve().parent.parent / "sdk"
LOCALES_DIR = Path(common.__file__).resolve().parent / "locales"
LOCALES = ("en", "ja")
CONSOLE_TEXTS = "web.admin."     # the console's own texts: in its catalogues alone
PAGES = ("index.html", "admin.html")
# A module script needs a JavaScript type (RFC 9239); the declaration file is TypeScript source.
MIMETYPES = {".js": "text/javascript", ".css": "text/css", ".json": "application/json", ".html": "text/html",
             ".svg": "image/svg+xml", ".png": "image/png", ".ts": "application/typescript"}
BRAND_LOGO = "/web/brand-logo"          # + .svg or .png
# Where a branded page puts the brand: its stylesheet after the page's last one, its logo in the header
# (before the name) and as the page's icon, its name in the <noscript> text.
STYLESHEET = re.compile(r'^(?P<indent>[ \t]*)<link rel="stylesheet" href="[^"]+">\n', re.MULTILINE)
HEADER_NAME = re.compile(r'<span class="brand" (?P<text>data-i18n="[^"]+")></span>')
ICON = '<link rel="icon" href="data:,">'
NOSCRIPT = re.compile(r"<noscript>[\s\S]*?</noscript>")
# The console footer's placeholder for the running version (admin.html).
VERSION_MARK = "@VERSION@"
DIGEST_CHARS = 12            # 48 bits of SHA-256: the fingerprint in a file's address and its ETag
FINGERPRINTED = re.compile(rf"^(?P<dir>/.*/)(?P<stem>[^/.]+)\.(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}})(?P<rest>\.[^/]+)$")
# A page's src= and href= to a file served here, and where the import map goes: before the first module.
LOCAL_REFERENCE = re.compile(r'(?P<attr>\s(?:src|href)=")(?P<url>/(?:web|sdk)/[^"]+)"')
FIRST_MODULE = re.compile(r'^(?P<indent>[ \t]*)<script type="module"', re.MULTILINE)
PAGE_MODULE = re.compile(r'<script type="module" src="(?P<url>/[^"]+)"')
# A static `import ... from "x"`, `export ... from "x"` or `import "x"` at the start of a line (not `import("x")`).
STATIC_IMPORT = re.compile(r'^(?:(?:import|export)\s[^"\'();]*?\bfrom\s*|import\s*)"(?P<spec>[^"]+)"', re.MULTILINE)
DYNAMIC_IMPORT = re.compile(r'\bimport\(\s*"(?P<spec>[^"]+)"\s*\)')

# Everything the page loads is same-origin; the QR code arrives as a data: URI (SPEC §4). The one inline
# script, the import map, is allowed by its hash (appended to script-src when the page is built).
CONTENT_SECURITY_POLICY = [
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
    "frame-ancestors 'none'",
]


def with_image_sources(policy: str, sources: tuple[str, ...]) -> str:
    """`policy` with `sources` (serialized origins) added to its img-src directive: the apps' logos the sign-in
    page shows (relying_parties.registry.allowed_logo_origins)."""
    if not sources:
        return policy
    directives = [part.strip() for part in policy.split(";")]
    return "; ".join(f"{part} {' '.join(sources)}" if part.split(" ", 1)[0] == "img-src" else part
                     for part in directives)


@dataclass(frozen=True)
class Encoded:
    body: bytes
    etag: str                # differs per encoding: a cache must never answer gzip to a 304 of identity


@dataclass(frozen=True)
class Asset:
    url: str                          # the plain address, e.g. /web/app.js
    mimetype: str
    digest: str                       # of the file as it is: its fingerprint
    plain: dict[str, Encoded]         # the file as it is, by encoding ("identity", and "gzip" if smaller)
    fingerprinted: dict[str, Encoded]  # what its fingerprinted address serves: a module minified

    @property
    def fingerprinted_url(self) -> str:
        folder, _, name = self.url.rpartition("/")
        stem, dot, rest = name.partition(".")
        return f"{folder}/{stem}.{self.digest}{dot}{rest}"


@dataclass(frozen=True)
class Page:
    asset: Asset                     # the page rewritten: fingerprinted addresses, import map, preloads
    content_security_policy: str     # with the SHA-256 of its own import map


@dataclass(frozen=True)
class WebAssets:
    pages: dict[str, Page]           # file name (index.html, admin.html) -> page
    by_url: dict[str, Asset]         # plain address -> file

    def find(self, url: str) -> tuple[Asset, bool] | None:
        """(the file, whether `url` names its current content) for a plain or fingerprinted address.
        An outdated fingerprint (a page from an earlier release, say on another host in a rolling
        deploy) gets the current file, revalidated rather than immutable; an unknown name gets None."""
        if url in self.by_url:
            return self.by_url[url], False
        match = FINGERPRINTED.match(url)
        asset = self.by_url.get(f"{match['dir']}{match['stem']}{match['rest']}") if match else None
        if match is None or asset is None:
            return None
        return asset, match["digest"] == asset.digest


def encodings(body: bytes) -> dict[str, Encoded]:
    etag = hashlib.sha256(body).hexdigest()[:DIGEST_CHARS]
    encoded = {"identity": Encoded(body, etag)}
    compressed = gzip.compress(body, compresslevel=9, mtime=0)
    if len(compressed) < len(body):
        encoded["gzip"] = Encoded(compressed, f"{etag}-gzip")
    return encoded


def make_asset(url: str, body: bytes) -> Asset:
    plain = encodings(body)
    loaded = encodings(rjsmin.jsmin(body.decode()).encode()) if url.endswith(".js") else plain
    return Asset(url=url, mimetype=MIMETYPES[Path(url).suffix], digest=plain["identity"].etag, plain=plain,
                 fingerprinted=loaded)


def web_catalogue(locale: str, *, console: bool = False, brand: Brand = DEFAULT_BRAND) -> bytes:
    """The page's part of the brand's catalogue: the server's "error." and "mail." texts stay out, and
    so do the console's own texts except in the console's catalogue."""
    messages = brand.catalogues[locale]
    wanted = {k: v for k, v in messages.items()
              if k.startswith("web.") and (console or not k.startswith(CONSOLE_TEXTS))}
    return json.dumps(wanted, ensure_ascii=False).encode()


def catalogue_url(locale: str, *, console: bool = False) -> str:
    return f"/web/locales/{'admin/' if console else ''}{locale}.json"


def brand_logo_url(brand: Brand) -> str | None:
    """The logo's plain address (its page rewrites it to the fingerprinted one), if the brand has one."""
    return f"{BRAND_LOGO}{Path(brand.logo.file_name).suffix}" if brand.logo else None


def _files(brand: Brand) -> Iterable[tuple[str, bytes]]:
    for folder, prefix in ((WEB_DIR, "/web/"), (SDK_DIR, "/sdk/")):
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in MIMETYPES and path.suffix != ".html":
                yield prefix + path.name, path.read_bytes()
    for locale in LOCALES:
        for console in (False, True):
            yield catalogue_url(locale, console=console), web_catalogue(locale, console=console, brand=brand)
    if brand.stylesheet is not None:
        yield STYLESHEET_URL, brand.stylesheet
    if brand.logo is not None:
        yield f"{BRAND_LOGO}{Path(brand.logo.file_name).suffix}", brand.logo.body


def branded_html(html: str, brand: Brand) -> str:
    """The page as `brand` shows it before its script runs: the brand's stylesheet after the page's own,
    its logo in the header and as the icon, its name in the text shown without JavaScript."""
    if brand.is_default:
        return html
    html = NOSCRIPT.sub(lambda m: PRODUCT_NAME.sub(lambda _: escape(brand.name), m[0]), html)
    if brand.stylesheet is not None:
        last = list(STYLESHEET.finditer(html))[-1]
        link = f'{last["indent"]}<link rel="stylesheet" href="{STYLESHEET_URL}">\n'
        html = html[:last.end()] + link + html[last.end():]
    logo = brand_logo_url(brand)
    if logo is not None:
        html = HEADER_NAME.sub(lambda m: f'<span class="brand"><img class="brand-logo" src="{logo}" alt="">'
                                         f'<span {m["text"]}></span></span>', html, count=1)
        html = html.replace(ICON, f'<link rel="icon" href="{logo}">')
    return html


def imported(entries: Iterable[str], sources: dict[str, str], *, dynamic: bool = False) -> set[str]:
    """The modules `entries` import, directly or through others: with static imports alone, or
    (`dynamic`) with `import("x")` too."""
    patterns = (STATIC_IMPORT, DYNAMIC_IMPORT) if dynamic else (STATIC_IMPORT,)
    found: set[str] = set()
    waiting = [url for url in entries if url in sources]
    while waiting:
        url = waiting.pop()
        if url in found:
            continue
        found.add(url)
        folder = posixpath.dirname(url)
        waiting += [target for pattern in patterns for match in pattern.finditer(sources[url])
                    if (target := posixpath.normpath(posixpath.join(folder, match["spec"]))) in sources]
    return found


def statically_imported(entries: Iterable[str], sources: dict[str, str]) -> set[str]:
    """What a page preloads: the modules its entries import with static imports alone."""
    return imported(entries, sources)


def render_page(html: str, assets: dict[str, Asset], *, console: bool = False) -> tuple[str, str]:
    """(the page loading every file by its fingerprinted address, the SHA-256 source of its import
    map): the map covers the modules the page can load and the catalogues (the console's own, for the
    console), and each module the page imports statically is preloaded, so a cold load fetches them
    in parallel instead of one import level at a time."""
    sources = {url: asset.plain["identity"].body.decode() for url, asset in assets.items() if url.endswith(".js")}
    entries = PAGE_MODULE.findall(html)
    mapped = {url: assets[url].fingerprinted_url for url in sorted(imported(entries, sources, dynamic=True))}
    mapped |= {catalogue_url(locale): assets[catalogue_url(locale, console=console)].fingerprinted_url
               for locale in LOCALES}
    preloaded = statically_imported(entries, sources)
    import_map = json.dumps({"imports": mapped}, indent=1)
    page = LOCAL_REFERENCE.sub(lambda m: f'{m["attr"]}{assets[m["url"]].fingerprinted_url}"'
                               if m["url"] in assets else m[0], html)
    first_module = FIRST_MODULE.search(page)
    if first_module is None:
        raise RuntimeError("a page has no <script type=\"module\"> to put the import map before")
    indent = first_module["indent"]
    preloads = "".join(f'{indent}<link rel="modulepreload" href="{mapped[url]}">\n'
                       for url in mapped if url in preloaded)
    head = f'{indent}<script type="importmap">{import_map}</script>\n{preloads}'
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    return page[:first_module.start()] + head + page[first_module.start():], f"'sha256-{digest}'"


def make_page(name: str, assets: dict[str, Asset], brand: Brand = DEFAULT_BRAND) -> Page:
    html = (WEB_DIR / name).read_text(encoding="utf-8").replace(VERSION_MARK, escape(running_version()))
    html, map_source = render_page(branded_html(html, brand), assets, console=name == "admin.html")
    policy = "; ".join(f"{part} {map_source}" if part.startswith("script-src") else part
                       for part in CONTENT_SECURITY_POLICY)
    return Page(asset=make_asset(f"/{name}", html.encode()), content_security_policy=policy)


def web_assets(brand: Brand = DEFAULT_BRAND) -> WebAssets:
    """Built once per process and brand (when the app is made), then only read: safe under any server's
    threads."""
    return _built(brand)  # one cache key per brand: `web_assets()` and `web_assets(DEFAULT_BRAND)` are one


@cache
def _built(brand: Brand) -> WebAssets:
    by_url = {url: make_asset(url, body) for url, body in _files(brand)}
    return WebAssets(pages={name: make_page(name, by_url, brand) for name in PAGES}, by_url=by_url)


def chosen_encoding(accepted: Iterable[tuple[str, float]], offered: Iterable[str]) -> str:
    """gzip when the client's Accept-Encoding (RFC 9110 §12.5.3, with its q-values) allows it and does
    not prefer identity by a higher q; identity, which every client takes, otherwise."""
    quality = {coding.lower(): q for coding, q in accepted}
    wildcard = quality.get("*")
    gzip_q = quality.get("gzip", quality.get("x-gzip", wildcard or 0.0))
    identity_q = quality.get("identity", wildcard or 0.0)
    return "gzip" if "gzip" in offered and gzip_q > 0 and gzip_q >= identity_q else "identity"

"""The frame of a page the server answers a browser itself, without the web UI's script (the OpenID Provider's
error and form_post pages, SPEC §14; a provider round trip's refusal, SPEC §16): the brand's top bar as the web
UI's sign-in page shows it, its stylesheets, the person's language, and headers that keep the page to itself (a
Content-Security-Policy with no inline script, no-store, no referrer). Pure: werkzeug's Response, no Flask."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import PurePosixPath

from werkzeug.wrappers import Response

from common import brand, i18n

STYLES = ("/web/app.css", "/web/oidc_page.css")
BRAND_LOGO = "/web/brand-logo"      # + .svg or .png: where the web UI serves the brand's logo (citylogin.webui.assets)
POLICY = ("default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "base-uri 'none'",
          "frame-ancestors 'none'")


def text(key: str, locale: str, **params: object) -> str:
    """The catalogue's text for `key` in `locale`, HTML-escaped."""
    return escape(i18n.text(key, locale, **params))


def header(locale: str) -> str:
    """The web UI's top bar as its sign-in page shows it: the brand's logo, if it has one, and its name."""
    logo = brand.current().logo
    image = (f'<img class="brand-logo" src="{BRAND_LOGO}{escape(PurePosixPath(logo.file_name).suffix)}" alt="">'
             if logo is not None else "")
    name = text("web.app.name", locale)
    return f'<header class="topbar"><span class="brand">{image}<span>{name}</span></span></header>'


def styles() -> tuple[str, ...]:
    return STYLES if brand.current().stylesheet is None else (*STYLES, brand.STYLESHEET_URL)


def page(*, title: str, body: str, locale: str, status: int, policy: Sequence[str], script: str | None) -> Response:
    """The whole page: `title` and `body` are HTML already escaped; `script` a module of the web UI, if any."""
    html = (f'<!DOCTYPE html><html lang="{escape(locale)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><title>{title}</title>'
            + "".join(f'<link rel="stylesheet" href="{style}">' for style in styles())
            + (f'<script type="module" src="{script}"></script>' if script else "")
            + f'</head><body>{header(locale)}{body}</body></html>')
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = "; ".join(policy)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = locale
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response

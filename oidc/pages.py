"""The pages /oidc answers a browser itself (SPEC §14), pure and without Flask: the error page of a
request that has no usable way back to an app (an authorization or logout request that does not
check out), and the auto-submitting page of `response_mode=form_post` (OAuth 2.0 Form Post Response
Mode). Each page's text is the person's language (common/i18n), every value in it HTML-escaped, and
its Content-Security-Policy allows no inline script: the one script, the web UI's
/web/oidc_page.js, submits the form or offers "go back", and without it the page still works (a
visible button; a link home)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import PurePosixPath

from werkzeug.wrappers import Response

from common import brand, i18n

class BrowserRefusal(Exception):
    """A request refused to the person's browser with error_page: never a JSON document, never a
    redirect (no way back to the app is trusted). `kind`: authorize, logout or respond."""

    def __init__(self, *, kind: str, error: str, description: str | None = None) -> None:
        super().__init__(description or error)
        self.kind, self.error, self.description = kind, error, description


SCRIPT = "/web/oidc_page.js"
STYLES = ("/web/app.css", "/web/oidc_page.css")
BRAND_LOGO = "/web/brand-logo"      # + .svg or .png: where the web UI serves the brand's logo (citylogin.webui.assets)
_POLICY = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "base-uri 'none'",
           "frame-ancestors 'none'"]
# The refusals a person is told about in their own words, by the OAuth error (else: the request is not valid).
_REASONS = {"invalid_client": "unknown_app", "invalid_request_uri": "expired", "oidc_request_unknown": "expired"}
KINDS = ("authorize", "logout", "respond")
MAX_DETAIL = 300


def error_page(*, kind: str, error: str, description: str | None, locale: str, home: str) -> Response:
    """400: what went wrong with an app's `kind` of request (authorize, logout, respond), in words for
    the person, with the way back (go back, the web UI's home) and the OAuth error for the app's developer.
    `description` is shown only as given: the caller keeps anything the request sent out of it."""
    reason = _REASONS.get(error, "invalid")
    detail = escape(f"{error}: {description}" if description else error)[:MAX_DETAIL]
    body = (f'<main class="oidc-page" data-error="{escape(error)}"><section class="card">'
            f'<h1>{_text(f"page.{kind}.title", locale)}</h1>'
            f'<p class="oidc-page-reason">{_text(f"page.{kind}.{reason}", locale)}</p>'
            f'<p class="oidc-page-ways"><button type="button" id="oidc-back" hidden>{_text("page.back", locale)}'
            f'</button> <a href="{escape(home)}">{_text("page.home", locale)}</a></p>'
            f'<p class="oidc-page-detail">{_text("page.for_developers", locale)} <code>{detail}</code></p>'
            '</section></main>')
    return _page(title=_text(f"page.{kind}.title", locale), body=body, locale=locale, status=400,
                 policy=[*_POLICY, "form-action 'none'"])


def unechoed(description: str | None, sent: Iterable[str]) -> str | None:
    """`description`, unless it repeats a value the request sent (a redirect URI, a hint): the page
    says nothing the sender chose, and no token."""
    if description is None or any(value and value in description for value in sent):
        return None
    return description


def form_post_page(*, action: str, fields: Sequence[tuple[str, str]], locale: str) -> Response:
    """200: the authorization response as a form the browser POSTs to the app's redirect URI `action`
    (OAuth 2.0 Form Post Response Mode §2); the script submits it, the button does without one."""
    inputs = "".join(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in fields)
    body = (f'<main class="oidc-page"><form id="oidc-response" class="card" method="post" action="{escape(action)}">'
            f'{inputs}'
            f'<p>{_text("page.respond.returning", locale)}</p>'
            f'<button type="submit">{_text("page.respond.continue", locale)}</button></form></main>')
    # No form-action: Chromium holds the app's own redirects after the POST to it too (an app answering
    # its callback with a redirect to another of its hosts would stop here), and no value is unescaped.
    return _page(title=_text("page.respond.returning", locale), body=body, locale=locale, status=200,
                 policy=_POLICY)


def _text(key: str, locale: str) -> str:
    return escape(i18n.text(key, locale))


def _header(locale: str) -> str:
    """The web UI's top bar as its sign-in page shows it: the brand's logo, if it has one, and its name."""
    logo = brand.current().logo
    image = (f'<img class="brand-logo" src="{BRAND_LOGO}{escape(PurePosixPath(logo.file_name).suffix)}" alt="">'
             if logo is not None else "")
    name = _text("web.app.name", locale)
    return f'<header class="topbar"><span class="brand">{image}<span>{name}</span></span></header>'


def _styles() -> tuple[str, ...]:
    return STYLES if brand.current().stylesheet is None else (*STYLES, brand.STYLESHEET_URL)


def _page(*, title: str, body: str, locale: str, status: int, policy: list[str]) -> Response:
    html = (f'<!DOCTYPE html><html lang="{escape(locale)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="referrer" content="no-referrer"><title>{title}</title>'
            + "".join(f'<link rel="stylesheet" href="{style}">' for style in _styles())
            + f'<script type="module" src="{SCRIPT}"></script></head>'
            f'<body>{_header(locale)}{body}</body></html>')
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = "; ".join(policy)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = locale
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response

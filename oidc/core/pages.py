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

from werkzeug.wrappers import Response

from common.web import html_page

class BrowserRefusal(Exception):
    """A request refused to the person's browser with error_page: never a JSON document, never a
    redirect (no way back to the app is trusted). `kind`: authorize, logout or respond."""

    def __init__(self, *, kind: str, error: str, description: str | None = None) -> None:
        super().__init__(description or error)
        self.kind, self.error, self.description = kind, error, description


SCRIPT = "/web/oidc_page.js"
_POLICY = list(html_page.POLICY)
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
    return html_page.text(key, locale)


def _page(*, title: str, body: str, locale: str, status: int, policy: list[str]) -> Response:
    return html_page.page(title=title, body=body, locale=locale, status=status, policy=policy, script=SCRIPT)

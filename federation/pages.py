"""The page a browser sees when a provider's answer is refused (SPEC §16): in the person's language, naming
the reason in the words of the web UI's own error texts (web.error.<code>), with a link back to the start
page, branded as the server's other pages (common.web.html_page). It says nothing the request or the provider
sent: only the code, which the catalogue's text stands for."""
from __future__ import annotations

from html import escape

from werkzeug.wrappers import Response

from common.errors import ApiError
from common.web import html_page

POLICY = (*html_page.POLICY, "form-action 'none'")
SHOWN_STATUSES = frozenset({400, 401, 403, 404, 409, 503})


def refusal_page(error: ApiError, *, locale: str, home: str) -> Response:
    """`error`'s status (400 for one this page does not expect) with its reason in `locale` and the way home."""
    code = error.code.value
    title = html_page.text("page.authorize.title", locale)
    body = (f'<main class="oidc-page" data-error="{escape(code)}"><section class="card">'
            f'<h1>{title}</h1>'
            f'<p class="oidc-page-reason">{_reason(error, locale)}</p>'
            f'<p class="oidc-page-ways"><a href="{escape(home)}">{html_page.text("page.home", locale)}</a></p>'
            f'<p class="oidc-page-detail"><code>{escape(code)}</code></p>'
            '</section></main>')
    status = error.status if error.status in SHOWN_STATUSES else 400
    response = html_page.page(title=title, body=body, locale=locale, status=status, policy=POLICY, script=None)
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


def _reason(error: ApiError, locale: str) -> str:
    """The web UI's words for the code; the error's own detail for a code the web UI has no words for."""
    try:
        return html_page.text(f"web.error.{error.code.value}", locale)
    except KeyError:
        return escape(error.detail_in(locale))

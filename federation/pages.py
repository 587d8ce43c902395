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


REPOST_SCRIPT = "/web/oidc_page.js"  # submits the form #oidc-response at once; its button does without a script
REPOST_POLICY = (*html_page.POLICY, "form-action 'self'")


def repost_page(*, action: str, fields: list[tuple[str, str]], locale: str) -> Response:
    """200: the provider's form post, posted again to `action` from this service's own page. The browser
    sends a SameSite=Lax cookie with a POST only when a page of the same site makes it, so a provider's
    cross-site form post (Apple's form_post) arrives without the round trip's binding cookie: posted again
    from here, it comes with it."""
    inputs = "".join(f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">' for name, value in fields)
    title = html_page.text("page.respond.returning", locale)
    body = (f'<main class="oidc-page"><form id="oidc-response" class="card" method="post" action="{escape(action)}">'
            f'{inputs}<p>{title}</p>'
            f'<button type="submit">{html_page.text("page.respond.continue", locale)}</button></form></main>')
    return html_page.page(title=title, body=body, locale=locale, status=200, policy=REPOST_POLICY,
                          script=REPOST_SCRIPT)

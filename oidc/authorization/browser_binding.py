"""An authorization request is finished only by the browser that started it (SPEC §14).
/oidc/authorize gives the browser a random value in a cookie of its own for that request and keeps
only the value's digest with the request; every step that reads, continues or finishes the request
(the sign-in page, the code, single sign-on, the person's "no") asks for the cookie and compares
digests in constant time. A request id that leaks (a shared link, a screenshot, a log) is worth
nothing in another browser: another account signed in there cannot finish it for the app of the
browser that started it (a login CSRF: that app would get the other account).

One cookie per request, its name derived from the request's id: two tabs signing in to two apps at
once each keep theirs. HttpOnly (no script reads it), SameSite=Lax (the app's top-level redirect
sets it; no other site's page or frame sends it), scoped to /oidc, Secure when the issuer is https,
and it lives as long as the request. No Flask here: the views read the cookie, /oidc/authorize's
answer carries it."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from werkzeug.wrappers import Response

from common.errors import ApiError, ErrorCode
from common.crypto.tokens import digests_equal, new_token, token_digest

COOKIE_PREFIX = "citylogin_authz_"
VALUE_PURPOSE = "oidc_browser"        # the digest kept with the request
NAME_PURPOSE = "oidc_browser_cookie"  # the cookie's name, from the request's id
NAME_CHARS = 16                       # 64 bits: two requests of one browser never share a name
MAX_VALUE = 128                       # a presented value longer than any we give is nobody's


class OtherBrowser(ApiError):
    """The request is waiting, but not for this browser: it was started in another one (or this
    browser's cookie for it is gone)."""

    status, code = 403, ErrorCode.OIDC_REQUEST_OTHER_BROWSER
    detail = "This sign-in request was started in another browser: start again from the app in this one."


@dataclass(frozen=True)
class Binding:
    """A new request's cookie value (for the browser only) and its digest (kept with the request)."""

    value: str
    digest: str


def new_binding() -> Binding:
    value = new_token(32)
    return Binding(value=value, digest=value_digest(value))


def value_digest(value: str) -> str:
    return token_digest(value, purpose=VALUE_PURPOSE)


def cookie_name(request_id: str) -> str:
    """The cookie that binds `request_id` to its browser (the id itself never names a cookie)."""
    return COOKIE_PREFIX + token_digest(request_id, purpose=NAME_PURPOSE)[:NAME_CHARS]


def check(*, kept: str | None, presented: str | None) -> None:
    """OtherBrowser unless `presented` (the cookie the browser sent, None without one) is the value
    whose digest the request keeps; a request kept before requests were bound (`kept` None) is
    nobody's."""
    if kept is None or presented is None or len(presented) > MAX_VALUE:
        raise OtherBrowser()
    if not digests_equal(kept, value_digest(presented)):
        raise OtherBrowser()


def set_cookie(response: Response, *, request_id: str, binding: Binding, issuer: str, max_age: int) -> None:
    """The browser's cookie for the request: under the issuer's /oidc, for `max_age` seconds."""
    parsed = urlsplit(issuer)
    response.set_cookie(cookie_name(request_id), binding.value, max_age=max_age,
                        path=parsed.path.rstrip("/") + "/oidc", secure=parsed.scheme == "https",
                        httponly=True, samesite="Lax")

"""One round trip to a provider, kept server-side between start and callback (SPEC §16): what the callback
needs to check the answer (the nonce, the PKCE verifier, which never leaves this item) and what to do with it
(the purpose, the account and session of a link, where the browser goes after), under the digest of `state`
in the one_time_tokens table, for 10 minutes, used once (one conditional delete: of two callbacks with one
state, one gets the item).

The round trip is bound to the browser that started it, as /oidc's requests are (oidc.authorization.browser_binding):
the start gives it a random value in a cookie of its own (HttpOnly, SameSite=Lax — the provider's top-level
redirect or Apple's form post back sends it —, Path=/federation, Secure when the public URL is https) and the
item keeps the value's digest; the callback compares digests in constant time. A `state` that leaks (a log,
a shared link) is worth nothing in another browser: no login CSRF."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.common.security import generate_token
from werkzeug.wrappers import Response

from common.crypto.tokens import digests_equal, new_token, token_digest
from common.database.dynamo import TableNames
from common.database.one_time_tokens import OneTimeTokenStore
from federation import tickets
from federation.models import Purpose
from federation.refusals import OtherBrowser, StateInvalid, because

KIND = "federation_state"
STATE_PURPOSE = "federation-state"
BROWSER_PURPOSE = "federation-browser"
COOKIE_NAME_PURPOSE = "federation-browser-cookie"
COOKIE_PREFIX = "citylogin_fed_"
NAME_CHARS = 16
TTL = 600
MAX_VALUE = 128  # a presented state or cookie longer than any given is nobody's
VERIFIER_CHARS = 64  # RFC 7636 §4.1: 43 to 128 characters
REPOSTED = "citylogin_reposted"


@dataclass(frozen=True)
class RoundTrip:
    """What the start keeps for the callback."""

    provider: str
    nonce: str
    verifier: str
    purpose: Purpose
    browser_digest: str
    return_to: str | None = None
    user_uuid: str | None = None     # purpose "link" or "reauth": the signed-in account and its session
    session_id: str | None = None
    locale: str | None = None        # the language the web UI showed, for the callback's page
    started_epoch: int | None = None  # when the start kept it: a re-authentication's sign-in came after it


@dataclass(frozen=True)
class Started:
    """A new round trip: the values for the authorization request and the browser's cookie."""

    state: str
    browser_value: str
    trip: RoundTrip


def state_digest(state: str) -> str:
    return token_digest(state, purpose=STATE_PURPOSE)


def browser_digest(value: str) -> str:
    return token_digest(value, purpose=BROWSER_PURPOSE)


def cookie_name(state: str) -> str:
    """The cookie that binds `state` to its browser: one per round trip, so two tabs keep theirs."""
    return COOKIE_PREFIX + token_digest(state, purpose=COOKIE_NAME_PURPOSE)[:NAME_CHARS]


def begin(*, provider: str, purpose: Purpose, return_to: str | None, user_uuid: str | None = None,
          session_id: str | None = None, locale: str | None = None) -> Started:
    """Fresh state, nonce, PKCE verifier and browser value (each 256 bits or more of randomness)."""
    browser_value = new_token(32)
    trip = RoundTrip(provider=provider, nonce=new_token(32), verifier=generate_token(VERIFIER_CHARS),
                     purpose=purpose, browser_digest=browser_digest(browser_value), return_to=return_to,
                     user_uuid=user_uuid, session_id=session_id, locale=locale)
    return Started(state=new_token(32), browser_value=browser_value, trip=trip)


def keep(dynamodb: Any, tables: TableNames, started: Started, *, now: int) -> None:
    """Store the round trip under its state's digest for TTL seconds."""
    data = {key: value for key, value in asdict(started.trip).items() if value is not None} | {"started_epoch": now}
    OneTimeTokenStore(dynamodb, tables.one_time_tokens).create(
        digest=state_digest(started.state), kind=KIND, expires_epoch=now + TTL, data=data)


def take(dynamodb: Any, tables: TableNames, *, state: str | None, now: int) -> RoundTrip:
    """The round trip of `state`, used up; StateInvalid if it is unknown, expired or used already."""
    if not state or len(state) > MAX_VALUE:
        raise because(StateInvalid(), "state_missing")
    item = OneTimeTokenStore(dynamodb, tables.one_time_tokens).consume(digest=state_digest(state), kind=KIND,
                                                                       now=now)
    if item is None:
        raise because(StateInvalid(), "state_unknown")
    fields = RoundTrip.__dataclass_fields__
    return RoundTrip(**{name: value for name, value in item.items() if name in fields})


def check_browser(trip: RoundTrip, *, presented: str | None) -> None:
    """OtherBrowser unless `presented` (the cookie the browser sent) is the value the start gave it."""
    if presented is None or len(presented) > MAX_VALUE \
            or not digests_equal(trip.browser_digest, browser_digest(presented)):
        raise because(OtherBrowser(), "other_browser")


def needs_repost(params: Mapping[str, list[str]], *, cookies: Mapping[str, str]) -> bool:
    """Whether a form-posted answer came without its round trip's cookie on its first arrival: a cross-site
    POST carries no SameSite=Lax cookie, so the answer is posted once more from this service's own page
    (federation.pages.repost_page). Once only: posted again and still without it, it is another browser's."""
    states = params.get("state") or []
    if REPOSTED in params or len(states) != 1 or len(states[0]) > MAX_VALUE:
        return False
    return cookie_name(states[0]) not in cookies


def reposted(params: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """The fields to post again: those sent, and the mark that they were posted again."""
    return [(name, value) for name, values in params.items() for value in values] + [(REPOSTED, "1")]


def cookie_path(public_url: str) -> str:
    return urlsplit(public_url).path.rstrip("/") + "/federation"


def set_cookie(response: Response, *, state: str, value: str, public_url: str) -> None:
    """The browser's cookie for the round trip of `state`, under the service's /federation, for TTL seconds."""
    response.set_cookie(cookie_name(state), value, max_age=TTL, path=cookie_path(public_url),
                        secure=urlsplit(public_url).scheme == "https", httponly=True, samesite="Lax")


def clear_cookie(response: Response, *, state: str, public_url: str) -> None:
    response.delete_cookie(cookie_name(state), path=cookie_path(public_url),
                           secure=urlsplit(public_url).scheme == "https", httponly=True, samesite="Lax")


def set_ticket_cookie(response: Response, *, value: str, public_url: str) -> None:
    """The ticket the callback left (federation.tickets), for the same browser only, never in a URL."""
    response.set_cookie(tickets.COOKIE, value, max_age=tickets.TTL, path=cookie_path(public_url),
                        secure=urlsplit(public_url).scheme == "https", httponly=True, samesite="Lax")


def clear_ticket_cookie(response: Response, *, public_url: str) -> None:
    """The ticket's cookie gone, once what it was good for is done."""
    response.delete_cookie(tickets.COOKIE, path=cookie_path(public_url), secure=urlsplit(public_url).scheme == "https",
                           httponly=True, samesite="Lax")

"""The fetch of a request object by reference at /oidc/authorize (RFC 9101 §5.2, OpenID Connect Core
§6.2): from a request_uri the app registered (oidc.registration.request_uris matched it), never from
another address, and never with its fragment (a cache key the app keeps; citylogin caches nothing and
fetches the object at each use).

The fetch is common.outbound's: one deadline from connect to last byte, a size, no redirect followed, the
media type of a request object; for an app that registered itself, public addresses only unless the
deployment allows private ones; one fetch per URL in flight, a failure remembered a moment. Whatever goes
wrong is `invalid_request_uri`, never a 500 and never a hang; why is in the log, not in the answer."""
from __future__ import annotations

import logging

from authlib.oauth2.rfc9101.errors import InvalidRequestUriError

from common.log_bursts import BurstLogs
from common.outbound.fetch import Answer, FetchFailed, fetch
from common.outbound.single_flight import SingleFlight
from common.slots import Slot
from oidc.registration.request_uris import RequestUri

MAX_OBJECT_BYTES = 16384  # as a request object by value (oidc.core.parameter_checks.REQUEST_OBJECT_LENGTH)
REMEMBER_FAILURE = 2.0  # seconds a failed fetch of a URL is answered from memory
DEADLINE = 4.0  # seconds for the whole fetch, connect to last byte (a server that sends a byte at a time stops here)
MEDIA_TYPES = ("application/oauth-authz-req+jwt", "application/jwt")  # RFC 9101 §5.2.3, §10.4.1

log = logging.getLogger("oidc.request_uris")  # the name its log lines have always had


def location(uri: RequestUri) -> str:
    """Where the object is fetched: the registered URI, without its fragment (never sent)."""
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return f"{uri.scheme}://{host}:{uri.port}{uri.path}" + (f"?{uri.query}" if uri.query else "")


class RequestObjectFetches:
    """This process's fetches of request objects: one per URL in flight (a few requests wait for it, the others
    fail at once), a failure remembered for REMEMBER_FAILURE seconds, each failure's reason logged once a burst."""

    def __init__(self) -> None:
        self.flights: SingleFlight[Answer] = SingleFlight(remember_failures=REMEMBER_FAILURE)
        self.log = BurstLogs(log)

    def object_at(self, uri: RequestUri, *, client_id: str, private_allowed: bool) -> str:
        """The request object at a registered request_uri; InvalidRequestUriError for anything but a quick
        200 of a request object (why goes to the log, not to the app)."""
        url = location(uri)
        try:
            answer = self.flights.run((url, private_allowed), lambda: fetch(
                url, deadline_seconds=DEADLINE, max_bytes=MAX_OBJECT_BYTES, private_allowed=private_allowed,
                headers={"Accept": ", ".join(MEDIA_TYPES)}), wait_seconds=DEADLINE)
            body = _object_body(answer)
        except FetchFailed as failed:
            self.log.log(client_id, logging.WARNING, "app %s: its request_uri could not be fetched (%s)", client_id,
                         failed.reason)
            raise InvalidRequestUriError("The request_uri could not be fetched as a request object (a 200 of "
                                         f"{MEDIA_TYPES[0]}, at most {MAX_OBJECT_BYTES} bytes, within "
                                         f"{DEADLINE:g} s, no redirect).") from None
        try:
            return body.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRequestUriError("The object at request_uri is not a JWT.") from None


REQUEST_OBJECT_FETCHES: Slot[RequestObjectFetches] = Slot("oidc.request_uris")  # one per process, on its context


def fetched_object(uri: RequestUri, *, private_allowed: bool) -> str:
    """The request object at `uri` by a fetch of its own (RequestObjectFetches.object_at)."""
    return RequestObjectFetches().object_at(uri, client_id="-", private_allowed=private_allowed)


def _object_body(answer: Answer) -> bytes:
    """The body of a 200 of a request object's media type, uncompressed; FetchFailed otherwise."""
    if answer.status != 200:
        raise FetchFailed(f"answered {answer.status}")
    if answer.media_type() not in MEDIA_TYPES:
        raise FetchFailed(f"answered {answer.media_type() or 'no media type'}")
    if answer.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise FetchFailed("answered a compressed body")
    return answer.body

"""The background poll of citylogin's security events (RFC 8936 over SSF 1.0): each SET checked,
the sessions it ends (or this app's grants on live sessions) recorded, then acknowledged in the next poll.

Each guard polls a stream of its own (SSF stream management, made at start): the processes of one
app's API server each hear every event, whatever the others acknowledge. A stream citylogin ended
(unpolled for an hour) is replaced, and the guard then counts as listening only from then on."""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import httpx

from citylogin_guard.ended import EndedGrants, EndedSessions
from citylogin_guard.jwks import KeySet
from citylogin_guard.tokens import InvalidSecurityEvent, sessions_ended
from citylogin_guard.transport import CredentialsRefused, Metadata, Transmitter, TransmitterUnreachable

log = logging.getLogger("citylogin_guard")
FEED_THREAD = "citylogin-guard-feed"

MAX_EVENTS = 100
POLL_METHOD = "urn:ietf:rfc:8936"


class StreamGone(Exception):
    """citylogin no longer knows this receiver's stream (404): make another."""


# citylogin holds a long poll up to 30 s (SPEC §11): past that the answer is late.
LONGEST_HOLD = 35.0
# The feed's own, off every request's path (its thread waits, no request does): to connect, and to
# read an answer asked for at once. A held poll's read is the hold's.
CONNECT_TIMEOUT = 3.0
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 2.0


class Feed:
    """A daemon thread running one asyncio loop whose one task polls /ssf/poll until close()."""

    def __init__(self, transmitter: Transmitter, *, keys: KeySet, ended: EndedSessions, client_id: str,
                 stale_after: float, skew: float, ended_grants: EndedGrants | None = None) -> None:
        self._transmitter = transmitter
        self._keys = keys
        self._ended = ended
        self._ended_grants = EndedGrants() if ended_grants is None else ended_grants
        self._client_id = client_id
        self._skew = skew
        # A quiet long poll is cut (and followed by an immediate one) halfway to staleness, so a
        # 30-s hold never makes a healthy feed look unheard.
        self._hold_cut = min(stale_after / 2, LONGEST_HOLD)
        self.heard_at: float | None = None  # time.monotonic() of the last poll fully processed
        # time.time() when the first poll that succeeded was sent: an event acknowledged before
        # then (by an earlier process of this app) never comes to this one.
        self.listening_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._last_failure = ""
        self.stream_id: str | None = None
        self._endpoint: str | None = None  # where this receiver polls
        self._thread = threading.Thread(target=self._main, name=FEED_THREAD, daemon=True)

    def start(self) -> None:
        quiet_polls()
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Cancels the poll, a held one included, and waits for the thread."""
        if not self._thread.is_alive():
            return
        self._ready.wait(timeout)
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
        if self.stream_id:
            self._transmitter.end_stream(self.stream_id)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            self._task = loop.create_task(self._run())
            self._loop = loop
            self._ready.set()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    async def _run(self) -> None:
        async with httpx.AsyncClient(auth=self._transmitter.auth) as client:
            acks: list[str] = []
            immediate, failures = True, 0
            while True:
                try:
                    metadata = self._transmitter.metadata()
                    self._keys.load()
                    if self._endpoint is None:
                        self._endpoint = await self._open_stream(client, metadata)
                    sent_at = time.time()
                    answer = await self._poll(client, metadata, acks=acks, immediate=immediate)
                except StreamGone:
                    self._endpoint, self.stream_id, self.listening_since, acks = None, None, None, []
                    immediate = True
                    continue
                except httpx.ReadTimeout:
                    if not immediate:  # a quiet long poll cut on purpose; the acks go again
                        immediate = True
                        continue
                    failures = await self._failed(failures, "the poll timed out")
                    continue
                except (httpx.HTTPError, TransmitterUnreachable) as error:
                    if isinstance(error, CredentialsRefused):
                        # A quiet feed of an app citylogin no longer knows says nothing: every token is
                        # asked about from now on (SPEC §14), and introspection refuses it too.
                        self.heard_at = None
                    failures = await self._failed(failures, f"{type(error).__name__}: {error}")
                    immediate = True
                    continue
                except Exception:
                    # A bug here must not end the feed for the life of the process (every request
                    # would be introspected from then on): it is logged whole, and the poll goes on.
                    log.exception("citylogin guard: the event feed failed unexpectedly")
                    failures = await self._failed(failures, "an unexpected error")
                    immediate = True
                    continue
                acks, complete = self._take(answer["sets"], metadata)
                self._ended.prune()
                self._ended_grants.prune()
                if not complete:
                    failures = await self._failed(failures, "a security event failed its checks")
                    continue
                if failures:
                    log.warning("citylogin guard: the event feed answers again")
                self.heard_at, failures = time.monotonic(), 0
                if self.listening_since is None:
                    self.listening_since = sent_at
                immediate = answer["moreAvailable"]

    async def _poll(self, client: httpx.AsyncClient, metadata: Metadata, *, acks: list[str],
                    immediate: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"maxEvents": MAX_EVENTS, "returnImmediately": immediate}
        if acks:
            body["ack"] = acks
        read = CONNECT_TIMEOUT if immediate else self._hold_cut
        response = await client.post(self._endpoint or metadata.poll_endpoint, json=body,
                                     timeout=httpx.Timeout(CONNECT_TIMEOUT, read=read))
        if response.status_code == 404 and self.stream_id:
            raise StreamGone()
        if response.status_code == 401:
            raise CredentialsRefused("poll: HTTP 401")
        if response.status_code != 200:
            raise TransmitterUnreachable(f"poll: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise TransmitterUnreachable("poll: not JSON") from None
        if not (isinstance(answer, dict) and isinstance(answer.get("sets"), dict)
                and isinstance(answer.get("moreAvailable", False), bool)):
            raise TransmitterUnreachable("poll: not an RFC 8936 answer")
        answer.setdefault("moreAvailable", False)
        return answer

    async def _open_stream(self, client: httpx.AsyncClient, metadata: Metadata) -> str:
        """This receiver's poll endpoint: a stream of its own when citylogin offers them."""
        if not metadata.configuration_endpoint:
            return metadata.poll_endpoint
        response = await client.post(metadata.configuration_endpoint, json={"delivery": {"method": POLL_METHOD}},
                                     timeout=CONNECT_TIMEOUT)
        if response.status_code == 401:
            raise CredentialsRefused("stream: HTTP 401")
        if response.status_code != 201:
            raise TransmitterUnreachable(f"stream: HTTP {response.status_code}")
        try:
            stream = response.json()
            stream_id, endpoint = stream["stream_id"], stream["delivery"]["endpoint_url"]
        except (ValueError, KeyError, TypeError):
            raise TransmitterUnreachable("stream: not an SSF stream configuration") from None
        if not (isinstance(stream_id, str) and isinstance(endpoint, str) and endpoint):
            raise TransmitterUnreachable("stream: not an SSF stream configuration")
        self.stream_id = stream_id
        return endpoint

    def _take(self, sets: dict[str, Any], metadata: Metadata) -> tuple[list[str], bool]:
        """Records the sessions (or grants) ended by each valid SET; returns (the jtis to ack, all valid?). A SET
        that fails its checks is not acknowledged, so it comes again, and the feed counts as unheard
        meanwhile: the guard asks citylogin about each token rather than miss a revocation."""
        acks, complete = [], True
        for jti, token in sets.items():
            try:
                ended = sessions_ended(token, keys=self._keys, issuer=metadata.issuer, client_id=self._client_id,
                                       leeway=self._skew)
            except (InvalidSecurityEvent, TransmitterUnreachable, TypeError) as error:
                log.warning("citylogin guard: security event %s refused: %s", jti, error)
                complete = False
                continue
            for event in ended:
                forget_at = event.event_timestamp + metadata.access_token_ttl + 2 * self._skew
                if event.grant_id is None:
                    self._ended.add(event.session_id, forget_at=forget_at, reason=event.reason)
                else:  # the app's grant alone: the session and the app's later sign-ins on it go on
                    self._ended_grants.add(event.grant_id, forget_at=forget_at, reason=event.reason)
            acks.append(jti)
        return acks, complete

    async def _failed(self, failures: int, why: str) -> int:
        if failures == 0:
            log.warning("citylogin guard: the event feed failed (%s); checking tokens by introspection", why)
        elif why != self._last_failure:
            log.warning("citylogin guard: the event feed still fails, now: %s", why)
        self._last_failure = why
        await asyncio.sleep(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** failures))
        return failures + 1


class _QuietPolls(logging.Filter):
    """httpx logs every request it sends at INFO ("HTTP Request: POST .../ssf/poll/... 200 OK"): for the
    feed's steady polling, a line every few seconds that says nothing. The records of the feed's own
    thread count as DEBUG: shown only where the httpx logger is enabled for DEBUG. The app's other
    requests keep their level, and what changes (the feed lost, the feed back) the guard logs itself
    at WARNING on "citylogin_guard"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.threadName != FEED_THREAD or record.levelno >= logging.WARNING:
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_QUIET_POLLS = _QuietPolls()


def quiet_polls() -> None:
    """Puts the filter on httpx's logger, once per process."""
    httpx_log = logging.getLogger("httpx")
    if _QUIET_POLLS not in httpx_log.filters:
        httpx_log.addFilter(_QUIET_POLLS)

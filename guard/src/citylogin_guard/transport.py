"""The blocking calls to citylogin: its SSF metadata, its JWKS, introspection (RFC 7662)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

# Calls on a request's path (the metadata at a start, JWKS on an unknown kid, introspection when the
# feed is stale) wait this long to connect and this long for each read, by default: a citylogin that
# does not answer within it is as good as unreachable, and the request is answered 503 at once rather
# than held. Healthy, citylogin answers these in milliseconds (one JWT check, one DynamoDB read).
CALL_TIMEOUT = 0.5
# A failed metadata read is tried again at most this often, so that a citylogin that is down
# does not get a call per request.
RETRY_INTERVAL = 1.0


class TransmitterUnreachable(Exception):
    """citylogin did not answer, or answered what it never answers when well."""


class CredentialsRefused(TransmitterUnreachable):
    """citylogin refuses the app's credentials (401): the app was removed, or its secret replaced. It
    answers, so it is not down: what the guard cannot ask about, it cannot accept either."""


class NetworkNeeded(Exception):
    """The answer needs a call to citylogin, and the caller (an event loop) may not block."""


@dataclass(frozen=True, slots=True)
class Metadata:
    """What /.well-known/ssf-configuration says, and the guard needs."""

    issuer: str
    jwks_uri: str
    poll_endpoint: str
    access_token_ttl: float
    # SSF stream management: where a receiver gets a poll stream of its own (None: poll the app's)
    configuration_endpoint: str | None = None
    # The OpenID Provider's issuer: the `iss` of the access tokens apps get by OpenID Connect
    oidc_issuer: str | None = None

    @property
    def token_issuers(self) -> list[str]:
        """The `iss` an access token may carry: citylogin's own, or its OpenID Provider's."""
        return [self.issuer] + ([self.oidc_issuer] if self.oidc_issuer else [])


class Transmitter:
    """citylogin as the guard calls it outside the feed; one pooled client, safe across threads."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *,
                 call_timeout: float = CALL_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = httpx.BasicAuth(client_id, client_secret)
        # connect, send, each read and the wait for a pooled connection: no attempt is made twice
        self._client = httpx.Client(timeout=httpx.Timeout(call_timeout))
        self._metadata: Metadata | None = None
        self._lock = threading.Lock()
        self._tried_at = float("-inf")

    def metadata(self, *, may_block: bool = True) -> Metadata:
        """The SSF metadata, read once; a failed read is tried again at most once a second."""
        if self._metadata is not None:
            return self._metadata
        if not may_block:
            raise NetworkNeeded()
        with self._lock:
            if self._metadata is None:
                if time.monotonic() - self._tried_at < RETRY_INTERVAL:
                    raise TransmitterUnreachable("ssf-configuration: tried less than a second ago")
                self._tried_at = time.monotonic()
                self._metadata = _parse_metadata(self._get_json(f"{self.base_url}/.well-known/ssf-configuration"))
            return self._metadata

    def jwks(self) -> dict[str, Any]:
        return self._get_json(self.metadata().jwks_uri)

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662's answer for `token`, `{"active": false}` included; app-authenticated.
        CredentialsRefused if citylogin refuses the app itself (RFC 7662 §2.3: 401)."""
        try:
            response = self._client.post(f"{self.base_url}/session/introspect", data={"token": token},
                                         auth=self.auth)
        except httpx.HTTPError as error:
            raise TransmitterUnreachable(f"introspection: {type(error).__name__}") from None
        if response.status_code == 401:
            raise CredentialsRefused("introspection: HTTP 401")
        return _json_object(response, "introspection")

    def end_stream(self, stream_id: str) -> None:
        """Ends this receiver's poll stream (best effort: unpolled, it ends by itself within an hour)."""
        endpoint = self._metadata.configuration_endpoint if self._metadata else None
        if endpoint:
            try:
                self._client.delete(endpoint, params={"stream_id": stream_id}, auth=self.auth, timeout=1.0)
            except httpx.HTTPError:
                pass

    def close(self) -> None:
        self._client.close()

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._client.get(url)
        except httpx.HTTPError as error:
            raise TransmitterUnreachable(f"{url}: {type(error).__name__}") from None
        return _json_object(response, url)


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise TransmitterUnreachable(f"{what}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise TransmitterUnreachable(f"{what}: not JSON") from None
    if not isinstance(body, dict):
        raise TransmitterUnreachable(f"{what}: not a JSON object")
    return body


def _parse_metadata(body: dict[str, Any]) -> Metadata:
    try:
        metadata = Metadata(issuer=body["issuer"], jwks_uri=body["jwks_uri"], poll_endpoint=body["poll_endpoint"],
                            access_token_ttl=float(body["citylogin_access_token_ttl"]),
                            configuration_endpoint=body.get("configuration_endpoint") or None,
                            oidc_issuer=body.get("citylogin_oidc_issuer") or None)
    except (KeyError, TypeError, ValueError):
        raise TransmitterUnreachable("ssf-configuration lacks issuer, jwks_uri, poll_endpoint or the token ttl") \
            from None
    if not all(isinstance(v, str) and v for v in (metadata.issuer, metadata.jwks_uri, metadata.poll_endpoint)):
        raise TransmitterUnreachable("ssf-configuration: issuer, jwks_uri and poll_endpoint must be strings")
    if not isinstance(metadata.oidc_issuer, (str, type(None))):
        raise TransmitterUnreachable("ssf-configuration: citylogin_oidc_issuer must be a string")
    return metadata

"""What citylogin reads of an upstream provider before and during a round trip (SPEC §16): its discovery
document (OpenID Connect Discovery 1.0) and its JWK Set, both fetched by SPEC §14's rules
(common.outbound.fetch: one deadline from connect to last byte, a size cap, no redirect, public addresses only
unless CITYLOGIN_OIDC_FETCH_PRIVATE_ADDRESSES allows private ones), at most one fetch per URL in flight, and
kept per process for CITYLOGIN_OIDC_JWKS_CACHE_SECONDS. The keys are fetched again when an ID token names a
key id they lack (the provider rotated its keys), at most once per CITYLOGIN_OIDC_JWKS_REFETCH_SECONDS.

A provider that does not answer, answers late or answers garbage is IdpUnavailable (503) at once: the person
is told so and signs in another way; why is in the log, never in the answer."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable
from urllib.parse import urlsplit

from joserfc.jwk import KeySet

from common.outbound.fetch import FetchFailed, fetch
from common.outbound.key_sets import KeysUnavailable, RemoteKeySets, public_jwks_problem
from common.outbound.single_flight import SingleFlight
from common.runtime.context import AppContext
from common.slots import Slot
from federation.refusals import IdpUnavailable, because

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/openid-configuration"
MAX_BYTES = 64 * 1024
STALE_FACTOR = 12  # a document fetched before serves this many cache periods while the provider fails
# Asymmetric algorithms only: never `none`, never an HMAC a provider's public key would be the secret of.
ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
TENANT_TEMPLATE = "{tenantid}"
REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
MAX_PROVIDER_KEYS = 50


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a provider's discovery document a round trip uses, checked."""

    issuer: str                              # as the document says it: Microsoft's holds {tenantid}
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_algs: tuple[str, ...]           # what it signs with ∩ ALLOWED_ALGS, never empty
    iss_parameter_supported: bool = False     # RFC 9207 §3: then every answer must carry `iss`
    response_modes: tuple[str, ...] = ("query", "fragment")


class DiscoveryFailed(Exception):
    """The document is not one to use; `reason` says why, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def discovery_url(issuer: str) -> str:
    """Where `issuer`'s document is (Discovery §4)."""
    return issuer.rstrip("/") + WELL_KNOWN


def check_url(value: Any, *, private_allowed: bool) -> str:
    """An endpoint of the document: an absolute https URL (http only where private addresses are allowed, for a
    provider on the operator's own network or a test's loopback), no userinfo, no fragment."""
    if not isinstance(value, str):
        raise DiscoveryFailed("an endpoint is not a string")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that does not parse raises here
    except ValueError:
        raise DiscoveryFailed("an endpoint does not parse") from None
    schemes = ("https", "http") if private_allowed else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username is not None or parts.fragment:
        raise DiscoveryFailed(f"an endpoint is not an absolute {' or '.join(schemes)} URL")
    return value


def check_issuer(document: dict[str, Any], *, issuer: str) -> str:
    """Discovery §4.3: the document's issuer is exactly the one configured; or, for Microsoft's multi-tenant
    document (configured as .../common/v2.0), a template holding {tenantid} on the configured one's origin
    (each ID token's `iss` is then checked against it with its own `tid`: presets.issuer_matches)."""
    said = document.get("issuer")
    if said == issuer:
        return issuer
    if isinstance(said, str) and TENANT_TEMPLATE in said and _origin(said) == _origin(issuer) is not None:
        return said
    raise DiscoveryFailed("its issuer is not the configured one")


def _origin(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return (parts.scheme, parts.netloc) if parts.scheme == "https" and parts.username is None else None


def signing_algs(document: dict[str, Any]) -> tuple[str, ...]:
    """The ID token algorithms to accept: those it says it uses (RS256 when it says none, Discovery §3) that
    are in ALLOWED_ALGS; DiscoveryFailed if none is."""
    said = document.get("id_token_signing_alg_values_supported", ["RS256"])
    algs = tuple(alg for alg in ALLOWED_ALGS if isinstance(said, list) and alg in said)
    if not algs:
        raise DiscoveryFailed("it signs ID tokens with no algorithm citylogin accepts")
    return algs


def parse_metadata(body: bytes, *, issuer: str, private_allowed: bool) -> ProviderMetadata:
    """The checked metadata in `body`; DiscoveryFailed if it is not a usable document of `issuer`."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DiscoveryFailed("not JSON") from None
    if not isinstance(document, dict) or any(name not in document for name in REQUIRED):
        raise DiscoveryFailed("not a discovery document: " + ", ".join(REQUIRED) + " are required")
    said_issuer = check_issuer(document, issuer=issuer)
    urls = {name: check_url(document[name], private_allowed=private_allowed) for name in REQUIRED[1:]}
    modes = document.get("response_modes_supported", ["query", "fragment"])
    return ProviderMetadata(issuer=said_issuer, **urls, id_token_algs=signing_algs(document),
                            iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
                            is True,
                            response_modes=tuple(m for m in modes if isinstance(m, str)) if isinstance(modes, list)
                            else ())


@dataclass
class _Kept:
    metadata: ProviderMetadata
    fetched_at: float


class ProviderDirectory:
    """This process's providers' documents and keys, each fetched by SPEC §14's rules and kept a while."""

    def __init__(self, *, cache_seconds: float, refetch_seconds: float, timeout: float, private_allowed: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_seconds, self.timeout, self.private_allowed, self.clock = (cache_seconds, timeout,
                                                                             private_allowed, clock)
        self._kept: dict[str, _Kept] = {}
        self._lock = threading.Lock()
        self._flights: SingleFlight[ProviderMetadata] = SingleFlight()
        self.keys = RemoteKeySets(cache_seconds=cache_seconds, refetch_seconds=refetch_seconds, timeout=timeout,
                                  problem_of=partial(public_jwks_problem, max_keys=MAX_PROVIDER_KEYS,
                                                     max_chars=MAX_BYTES),
                                  log=log, owner_kind="provider", clock=clock)

    def metadata(self, issuer: str) -> ProviderMetadata:
        """`issuer`'s checked metadata: kept, or fetched (one fetch per URL in flight); a kept one serves a
        while longer when the provider fails. IdpUnavailable when there is none to use."""
        kept = self._kept.get(issuer)
        now = self.clock()
        if kept is not None and now - kept.fetched_at < self.cache_seconds:
            return kept.metadata
        try:
            metadata = self._flights.run(issuer, lambda: self._fetch(issuer), wait_seconds=self.timeout)
        except FetchFailed as failed:
            log.warning("provider %s: its discovery document could not be used (%s)", issuer, failed.reason)
            if kept is not None and now - kept.fetched_at < self.cache_seconds * STALE_FACTOR:
                return kept.metadata
            raise because(IdpUnavailable(), "discovery_failed") from None
        with self._lock:
            self._kept[issuer] = _Kept(metadata, self.clock())
        return metadata

    def _fetch(self, issuer: str) -> ProviderMetadata:
        answer = fetch(discovery_url(issuer), deadline_seconds=self.timeout, max_bytes=MAX_BYTES,
                       private_allowed=self.private_allowed, headers={"Accept": "application/json"})
        if answer.status != 200:
            raise FetchFailed(f"answered {answer.status}")
        try:
            return parse_metadata(answer.body, issuer=issuer, private_allowed=self.private_allowed)
        except DiscoveryFailed as failed:
            raise FetchFailed(failed.reason) from None

    def key_set(self, provider: str, metadata: ProviderMetadata, *, kid: str | None) -> KeySet:
        """The provider's keys, fetched again when they lack `kid` (at most once per refetch period); an
        IdpUnavailable when there are none to use."""
        try:
            return self.keys.key_set(provider, metadata.jwks_uri, private_allowed=self.private_allowed, kid=kid)
        except KeysUnavailable:  # why is in the log (common.outbound.key_sets)
            raise because(IdpUnavailable(), "jwks_failed") from None


DIRECTORY: Slot[ProviderDirectory] = Slot("federation.discovery")


def directory(ctx: AppContext) -> ProviderDirectory:
    """The app's one directory of providers' documents and keys, made at its first use."""
    settings = ctx.settings
    return ctx.slots.get_or_make(DIRECTORY, lambda: ProviderDirectory(
        cache_seconds=settings.oidc_jwks_cache_seconds, refetch_seconds=settings.oidc_jwks_refetch_seconds,
        timeout=settings.oidc_jwks_fetch_timeout, private_allowed=settings.oidc_fetch_private_addresses))

"""The keys an app registers (RFC 7591 §2: `jwks`, or a `jwks_uri` fetched and cached on every host): the public
keys of its client assertions (private_key_jwt, oidc.clients.authentication) and of its request objects
(oidc.authorization.request_objects), and the check of a JWK Set as registered (public_jwks, public_jwks_problem)."""
from __future__ import annotations

import json
import logging

from joserfc.jwk import KeySet

from relying_parties import outbound
from relying_parties.models import AppRecord
from common.slots import Slot
from common.outbound.key_sets import KeysUnavailable, RemoteKeySets, public_jwks_problem
from common.runtime.context import AppContext


def public_jwks(text: str) -> str:
    """The registered JWK Set as stored: the same keys, compact JSON."""
    return json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)


def app_key_set(ctx: AppContext, app: AppRecord, *, kid: str | None = None) -> KeySet:
    """The app's public keys (private_key_jwt, request objects): its registered `jwks`, or those at its
    `jwks_uri`, fetched again if they lack `kid` (common.outbound.key_sets); KeysUnavailable if it has none to use."""
    oidc = app.oidc()
    if oidc.jwks:
        return KeySet.import_key_set(json.loads(oidc.jwks))
    if oidc.jwks_uri:
        return remote_key_sets(ctx).key_set(app.client_id, oidc.jwks_uri, kid=kid,
                                            private_allowed=outbound.private_allowed(ctx.settings, app))
    raise KeysUnavailable("the app registered no keys")


REMOTE_KEY_SETS: Slot[RemoteKeySets] = Slot("oidc.client_keys")
JWKS_LOG = logging.getLogger("oidc.jwks_fetch")  # where an app's jwks_uri failures have always been logged


def remote_key_sets(ctx: AppContext) -> RemoteKeySets:
    """The process's one cache of apps' fetched keys for this app context, made at its first use."""
    settings = ctx.settings
    return ctx.slots.get_or_make(REMOTE_KEY_SETS, lambda: RemoteKeySets(
        cache_seconds=settings.oidc_jwks_cache_seconds, refetch_seconds=settings.oidc_jwks_refetch_seconds,
        timeout=settings.oidc_jwks_fetch_timeout, problem_of=public_jwks_problem, log=JWKS_LOG))

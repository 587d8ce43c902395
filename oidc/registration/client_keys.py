"""Apps that authenticate with a key instead of a secret (`private_key_jwt`, OpenID Connect Core §9,
RFC 7523): the app registers a JWK Set of public keys and signs a short-lived client assertion with
its private key at the token, PAR and revocation endpoints. Authlib verifies the assertion; this
module checks the registered keys, names the audiences and spends each assertion once on every host."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from relying_parties import outbound
from relying_parties.models import AppRecord
from common.slots import Slot
from common.crypto.tokens import token_digest
from common.database import dynamo
from common.database.one_time_tokens import OneTimeTokenStore
from common.keys.jwt_keys import one_spelling
from oidc.core import fapi2
from oidc.core import refusals
from common.outbound.key_sets import KeysUnavailable, RemoteKeySets, public_jwks_problem
from oidc.core.models import Client
from common.runtime.context import AppContext
from oidc.discovery.metadata import CLIENT_ASSERTION_ALGORITHMS

METHOD = "private_key_jwt"
# Asymmetric algorithms only: a public key never verifies an HMAC (the "alg confusion" attack).
ALGORITHMS = tuple(CLIENT_ASSERTION_ALGORITHMS)
# An assertion is spent until it expires; one that claims a longer life than this is refused, so a
# stolen assertion is short-lived and the record of spent ones stays small.
MAX_LIFETIME = 3600
SPENT_KIND = "client_assertion"
SPENT_PURPOSE = "client_assertion_jti"
KEYS_NOT_FETCHED = "The app's keys could not be fetched."


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


class PrivateKeyJwt(JWTBearerClientAssertion):
    """RFC 7523 §2.2 client authentication by Authlib, fitted to citylogin: the app's registered keys,
    the asymmetric algorithms only, the provider's endpoints as audiences, and each assertion's `jti`
    spent once by one conditional write (§3: a replayed assertion authenticates nobody)."""

    CLIENT_AUTH_METHOD = METHOD

    def __init__(self, *, issuer: str, tokens: OneTimeTokenStore, now: Any,
                 keys: Callable[[AppRecord, str | None], KeySet]) -> None:
        super().__init__(validate_jti=True)
        self.issuer, self.tokens, self.now, self.keys = issuer, tokens, now, keys

    def __call__(self, query_client: Callable[[Any], Client | None], request: Any) -> Client | None:
        self._check_profile(query_client, request)
        client = super().__call__(query_client, request)
        named = request.form.get("client_id")
        if client is not None and named is not None and named != client.client_id:
            raise InvalidClientError(description="client_id names another client than the assertion.")
        return client

    def _check_profile(self, query_client: Callable[[Any], Client | None], request: Any) -> None:
        """A FAPI 2.0 app's assertion is held to the profile's rules (oidc.core.fapi2) before anything else is
        checked or its jti spent: read unverified, it can only be refused here, never accepted."""
        assertion = request.form.get("client_assertion")
        if request.form.get("client_assertion_type") != self.CLIENT_ASSERTION_TYPE or not assertion:
            return
        header, claims = self.extract_assertion(assertion)
        subject = claims.get("sub")
        client = query_client(subject) if isinstance(subject, str) else None
        if client is None or not client.app.oidc().fapi2:
            return
        problem = fapi2.assertion_problem(header, claims, issuer=self.issuer, now=int(self.now().timestamp()))
        if problem is not None:
            raise refusals.because(InvalidClientError(description=problem), "fapi2_client_assertion")

    def get_audiences(self) -> list[str]:
        # RFC 7523 §3 and RFC 9126 §2: the issuer or the endpoint the assertion is sent to.
        return [self.issuer, *(f"{self.issuer}/oidc/{path}" for path in ("token", "par", "revoke"))]

    def resolve_client_public_key(self, client: Client) -> Callable[[Any], KeySet]:
        """The app's keys for the assertion being verified: joserfc calls this with it, so that keys fetched from
        a jwks_uri are fetched again when it names a kid they lack (the app rotated its key)."""
        def keys_for(assertion: Any) -> KeySet:
            kid = assertion.headers().get("kid")
            try:
                return self.keys(client.app, kid if isinstance(kid, str) else None)
            except KeysUnavailable:  # why is in the log (oidc.jwks_fetch): an app learns nothing of where it aimed
                raise InvalidClientError(description=KEYS_NOT_FETCHED) from None
        return keys_for

    def process_assertion_claims(self, assertion: str, resolve_key: Callable[[Any], KeySet]) -> dict[str, Any]:
        if not one_spelling(assertion):  # SPEC §14: one spelling per token, or its jti would not be single-use
            raise InvalidClientError(description="The client assertion is not a compact JWS.")
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as error:
            raise InvalidClientError(description="The client assertion's signature does not check out.") from error
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        now, expires = int(self.now().timestamp()), claims.get("exp")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256 or not isinstance(expires, int):
            return False
        if expires - now > MAX_LIFETIME + self.leeway:
            raise InvalidClientError(description=f"A client assertion lives at most {MAX_LIFETIME} s.")
        digest = token_digest(f"{claims['sub']}\n{jti}", purpose=SPENT_PURPOSE)
        try:
            self.tokens.create(digest=digest, kind=SPENT_KIND, expires_epoch=max(expires, now) + self.leeway)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

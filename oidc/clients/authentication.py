"""Client authentication (RFC 6749 §2.3) at the token, PAR, revocation and device authorization endpoints, by
Authlib's ClientAuthentication over the apps (oidc.clients.lookup): a secret by HTTP Basic or in the form (§2.3.1),
a public client's client_id alone (§2.1: `none`), or a client assertion signed with the app's key
(`private_key_jwt`, RFC 7523 §2.2 and OpenID Connect Core §9: PrivateKeyJwt, over the keys the app registered,
oidc.registration.client_keys). Authlib verifies the assertion; PrivateKeyJwt checks the registered keys, names the
audiences and spends each assertion once on every host."""
from __future__ import annotations

from typing import Any, Callable

from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Request
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from relying_parties.models import AppRecord
from common.slots import Slot
from common.crypto.tokens import token_digest
from common.database import dynamo
from common.database.one_time_tokens import OneTimeTokenStore
from common.keys.jwt_keys import one_spelling
from common.outbound.key_sets import KeysUnavailable
from common.runtime.context import AppContext
from oidc.clients import lookup
from oidc.core import fapi2
from oidc.core import refusals
from oidc.core.context import issuer, one_time_tokens
from oidc.core.models import Client
from oidc.discovery.metadata import CLIENT_ASSERTION_ALGORITHMS
from oidc.registration import client_keys

PRIVATE_KEY_JWT = "private_key_jwt"
# Where a public client may come too (sending its client_id): the code, refresh and device grants, PAR, revocation
# and device authorization. The client-credentials grant is a confidential client's alone (RFC 6749 §4.4).
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT, "none")
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post", PRIVATE_KEY_JWT)
# Asymmetric algorithms only: a public key never verifies an HMAC (the "alg confusion" attack).
ALGORITHMS = tuple(CLIENT_ASSERTION_ALGORITHMS)
# An assertion is spent until it expires; one that claims a longer life than this is refused, so a
# stolen assertion is short-lived and the record of spent ones stays small.
MAX_LIFETIME = 3600
SPENT_KIND = "client_assertion"
SPENT_PURPOSE = "client_assertion_jti"
KEYS_NOT_FETCHED = "The app's keys could not be fetched."

CLIENT_AUTHENTICATION: Slot[ClientAuthentication] = Slot("oidc.client_authentication")


def authenticated(ctx: AppContext, request: OAuth2Request, *, methods: tuple[str, ...] | list[str],
                  endpoint: str = "token") -> Client:
    """The client of `request`, authenticated at `endpoint` by the first of `methods` it uses and is registered
    for; InvalidClientError (RFC 6749 §5.2) if none."""
    return client_authentication(ctx)(request, list(methods), endpoint)


def client_authentication(ctx: AppContext) -> ClientAuthentication:
    """Authlib's client authentication over the apps, with private_key_jwt: one per app context."""
    return ctx.slots.get_or_make(CLIENT_AUTHENTICATION, lambda: _made(ctx))


def _made(ctx: AppContext) -> ClientAuthentication:
    methods = ClientAuthentication(lambda client_id: lookup.client(ctx, client_id))
    methods.register(PRIVATE_KEY_JWT, PrivateKeyJwt(
        issuer=issuer(ctx), tokens=one_time_tokens(ctx), now=ctx.now,
        keys=lambda app, kid: client_keys.app_key_set(ctx, app, kid=kid)))
    return methods


class PrivateKeyJwt(JWTBearerClientAssertion):
    """RFC 7523 §2.2 client authentication by Authlib, fitted to citylogin: the app's registered keys,
    the asymmetric algorithms only, the provider's endpoints as audiences, and each assertion's `jti`
    spent once by one conditional write (§3: a replayed assertion authenticates nobody)."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

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

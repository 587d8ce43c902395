"""The round trip with an upstream provider (SPEC §16), read top-down: `start` keeps a fresh round trip and
sends the browser to the provider; `callback` checks the provider's answer step by step (the round trip's
state, the browser, the provider's error, RFC 9207's `iss`, the code's redemption, the ID token) and leaves a
ticket (signing in) or links the identity (an account's "link another"); `ticket_view` tells the browser what
the ticket it holds is good for. Every refusal of the callback is logged and counted once (federation.refusals)
and shown to the person as a page (federation.pages), never a JSON document."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from accounts import user_service
from common.errors import ApiError, InvalidField
from common.runtime.context import AppContext
from federation import discovery, id_token, relying_party, tickets, transactions
from federation import identities
from federation import providers as provider_service
from federation.models import ProviderRecord, Purpose, UpstreamIdentity
from federation.presets import PRESETS, claim_is_true, issuer_matches
from federation.refusals import StateInvalid, because, record
from federation.round_trip_models import OfferedProvider, TicketView

MAX_NAME = 200
SIGNED_IN_HOME, LINKED_HOME = "/#federation", "/#account"
SUGGESTION = re.compile(r"[^a-z0-9_.-]")


class Linker(Protocol):
    def link_signed_in(self, ctx: AppContext, *, user_uuid: str, session_id: str, identity: UpstreamIdentity) -> Any:
        """flows.for_federation: links `identity` to the signed-in account (its checks, mail and history)."""


@dataclass(frozen=True)
class Started:
    authorization_url: str
    state: str
    browser_value: str


@dataclass(frozen=True)
class Finished:
    """Where the browser goes after a good answer, and the ticket cookie's value when one was issued."""

    location: str
    state: str
    ticket: str | None = None


class CallbackRefused(Exception):
    """A refused answer, already logged and counted: the page says `error`'s code in `locale`."""

    def __init__(self, error: ApiError, *, locale: str | None, state: str | None) -> None:
        super().__init__(error.code.value)
        self.error, self.locale, self.state = error, locale, state


def offered(ctx: AppContext) -> list[OfferedProvider]:
    return [OfferedProvider(name=p.name, display_name=p.display_name, preset=p.preset, signup=p.signup == "allow")
            for p in provider_service.list_providers(ctx)]


def redirect_uri(ctx: AppContext, name: str) -> str:
    """One redirect URI per provider (the mix-up defence): the answer's own path names its provider."""
    return f"{ctx.public_url().rstrip('/')}/federation/{name}/callback"


def checked_return_to(value: str | None) -> str | None:
    """`value` if it is a path of this service (parsed: no scheme, no host, not "//", no backslash)."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or any(ord(c) < 0x21 for c in value):
        raise InvalidField("return_to", "return_to must be a path of this service.")
    return value


def start(ctx: AppContext, *, name: str, purpose: Purpose, return_to: str | None, locale: str | None,
          user_uuid: str | None = None, session_id: str | None = None) -> Started:
    """A new round trip with provider `name`: kept, and the URL to send the browser to. 404 idp_not_found;
    503 idp_unavailable (counted) when its discovery document cannot be had. A re-authentication ("reauth")
    is of `user_uuid`'s account with one of its linked identities (404 identity_not_found for a provider it has
    none of) and asks the provider for a fresh sign-in."""
    provider = provider_service.get_provider(ctx, name)
    if purpose == "reauth":
        _check_linked_provider(ctx, user_uuid=user_uuid, provider=provider.name)
    try:
        metadata = discovery.directory(ctx).metadata(provider.issuer)
    except ApiError as error:
        record(error, provider=provider.name)
        raise
    begun = transactions.begin(provider=name, purpose=purpose, return_to=checked_return_to(return_to),
                               user_uuid=user_uuid, session_id=session_id, locale=locale)
    transactions.keep(ctx.dynamodb, ctx.tables, begun, now=ctx.epoch())
    preset = PRESETS[provider.preset]
    url = relying_party.authorization_url(
        metadata, client_id=provider.client_id, scope=provider.scope, redirect_uri=redirect_uri(ctx, name),
        state=begun.state, nonce=begun.trip.nonce, verifier=begun.trip.verifier, response_mode=preset.response_mode,
        fresh_login=purpose == "reauth", prompt=preset.reauth_prompt)
    return Started(authorization_url=url, state=begun.state, browser_value=begun.browser_value)


def _check_linked_provider(ctx: AppContext, *, user_uuid: str | None, provider: str) -> None:
    """The account re-authenticates only with a provider one of its identities is linked at."""
    linked = identities.list_identities(ctx, user_uuid=user_uuid) if user_uuid else []
    if not any(each.provider == provider for each in linked):
        raise identities.IdentityNotFound()


@dataclass
class _Seen:
    """What the callback learned before a refusal: for its log line, its count and its page."""

    provider: str | None = None
    locale: str | None = None
    state: str | None = None


def callback(ctx: AppContext, *, name: str, params: Mapping[str, list[str]], cookies: Mapping[str, str],
             linker: Linker) -> Finished:
    """The provider's answer, checked; CallbackRefused (logged and counted) for any refusal."""
    seen = _Seen()
    try:
        return _callback(ctx, name=name, params=params, cookies=cookies, linker=linker, seen=seen)
    except ApiError as error:
        record(error, provider=seen.provider)
        raise CallbackRefused(error, locale=seen.locale, state=seen.state) from None


def _callback(ctx: AppContext, *, name: str, params: Mapping[str, list[str]], cookies: Mapping[str, str],
              linker: Linker, seen: _Seen) -> Finished:
    provider = provider_service.get_provider(ctx, name)
    seen.provider = provider.name
    values = relying_party.single_values(params)
    seen.state = values.get("state")
    trip = transactions.take(ctx.dynamodb, ctx.tables, state=values.get("state"), now=ctx.epoch())
    seen.locale = trip.locale
    if trip.provider != provider.name:  # another provider's state at this one's redirect URI: a mix-up
        raise because(StateInvalid(), "state_other_provider")
    transactions.check_browser(trip, presented=cookies.get(transactions.cookie_name(values["state"])))
    relying_party.check_error(values)
    metadata = discovery.directory(ctx).metadata(provider.issuer)
    relying_party.check_iss_parameter(values, metadata)
    identity = _identity(ctx, provider, metadata, values, trip)
    return _outcome(ctx, trip, identity, state=values["state"], linker=linker)


def _identity(ctx: AppContext, provider: ProviderRecord, metadata: discovery.ProviderMetadata,
              values: Mapping[str, str], trip: transactions.RoundTrip) -> UpstreamIdentity:
    """Redeem the code and check the ID token: who the provider says the person is."""
    code = relying_party.check_code(values)
    settings = ctx.settings
    auth = relying_party.ClientAuth(client_id=provider.client_id, secret=provider_service.client_secret(ctx, provider),
                                    method=PRESETS[provider.preset].token_auth_method)
    token = relying_party.redeem(metadata, auth, code=code, redirect_uri=redirect_uri(ctx, provider.name),
                                 verifier=trip.verifier, deadline_seconds=settings.oidc_jwks_fetch_timeout,
                                 private_allowed=settings.oidc_fetch_private_addresses)
    directory = discovery.directory(ctx)
    claims = id_token.checked_claims(
        token, keys_for=lambda kid: directory.key_set(provider.name, metadata, kid=kid),
        allowed_algs=metadata.id_token_algs, client_id=provider.client_id, nonce=trip.nonce, now=ctx.epoch(),
        issuer_matches=lambda iss, claims: issuer_matches(configured=provider.issuer, metadata_issuer=metadata.issuer,
                                                          token_iss=iss, tid=claims.get("tid")))
    if trip.purpose == "reauth":
        id_token.check_auth_time(claims, not_before=trip.started_epoch or 0)
    return identity_of(provider, claims, user_field=values.get("user"))


def identity_of(provider: ProviderRecord, claims: Mapping[str, Any], *, user_field: str | None) -> UpstreamIdentity:
    """The identity (iss, sub) and what fills a new account: the e-mail, verified only on a true
    `email_verified`, and a name (Apple's comes only in the first form post's `user` field)."""
    email = claims.get("email")
    name = claims.get("name")
    if PRESETS[provider.preset].name_in_first_form_post and user_field:
        name = apple_name(user_field) or name
    return UpstreamIdentity(provider=provider.name, issuer=str(claims["iss"]), sub=str(claims["sub"]),
                            email=email if isinstance(email, str) and 0 < len(email) <= 254 else None,
                            email_verified=claim_is_true(claims.get("email_verified")),
                            name=name[:MAX_NAME] if isinstance(name, str) and name.strip() else None)


def apple_name(user_field: str) -> str | None:
    """"First Last" of Apple's `user` field ({"name": {"firstName", "lastName"}, "email"}), or None."""
    try:
        user = json.loads(user_field)
    except ValueError:
        return None
    parts = user.get("name") if isinstance(user, dict) else None
    if not isinstance(parts, dict):
        return None
    words = [parts.get(k) for k in ("firstName", "lastName")]
    joined = " ".join(w.strip() for w in words if isinstance(w, str) and w.strip())
    return joined[:MAX_NAME] or None


def _outcome(ctx: AppContext, trip: transactions.RoundTrip, identity: UpstreamIdentity, *, state: str,
             linker: Linker) -> Finished:
    if trip.purpose == "link" and trip.user_uuid and trip.session_id:
        linker.link_signed_in(ctx, user_uuid=trip.user_uuid, session_id=trip.session_id, identity=identity)
        return Finished(location=trip.return_to or LINKED_HOME, state=state)
    owner = identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub)
    if trip.purpose == "reauth":
        return _reauth_ticket(ctx, trip, identity, owner=owner, state=state)
    value = tickets.issue(ctx.dynamodb, ctx.tables, identity=identity, purpose="sign_in", now=ctx.epoch(),
                          user_uuid=owner, return_to=trip.return_to)
    return Finished(location=trip.return_to or SIGNED_IN_HOME, state=state, ticket=value)


def _reauth_ticket(ctx: AppContext, trip: transactions.RoundTrip, identity: UpstreamIdentity, *, owner: str | None,
                   state: str) -> Finished:
    """A re-authentication's answer: good only if the person signed in as an identity linked to the account
    that asked (signed in at the provider as someone else: refused, 404 identity_not_found); its ticket names
    that account, and POST /federation/reauth turns it into a reauth token for that account's session only."""
    if not trip.user_uuid or owner != trip.user_uuid:
        raise because(identities.IdentityNotFound(), "reauth_other_identity")
    value = tickets.issue(ctx.dynamodb, ctx.tables, identity=identity, purpose="reauth", now=ctx.epoch(),
                          user_uuid=owner, return_to=trip.return_to)
    return Finished(location=trip.return_to or LINKED_HOME, state=state, ticket=value)


def ticket_view(ctx: AppContext, *, value: str | None) -> TicketView:
    """What the ticket in the browser's cookie is good for; 401 federation_ticket_invalid without a live one."""
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=value, now=ctx.epoch())
    who = ticket.identity
    owner = identities.owner_of(ctx, issuer=who.issuer, sub=who.sub)
    user = user_service.get_user(ctx, user_uuid=owner) if owner else None
    taken = owner is None and who.email is not None and user_service.find_user_by_email(ctx, email=who.email)
    provider = _provider_or_none(ctx, who.provider)
    return TicketView(provider=who.provider, display_name=provider.display_name if provider else who.provider,
                      status="linked" if user else "email_taken" if taken else "new", purpose=ticket.purpose,
                      email=who.email, email_verified=who.email_verified, name=who.name,
                      username=user.username if user else None, suggested_username=suggested_username(who),
                      return_to=ticket.return_to, signup=bool(provider and provider.signup == "allow"))


def _provider_or_none(ctx: AppContext, name: str) -> ProviderRecord | None:
    try:
        return provider_service.get_provider(ctx, name)
    except ApiError:
        return None


def suggested_username(identity: UpstreamIdentity) -> str | None:
    """A username to offer: the e-mail's local part (or the name) in the characters usernames allow."""
    source = (identity.email or "").split("@", 1)[0] or (identity.name or "")
    suggestion = SUGGESTION.sub("", source.lower().replace(" ", "."))[:32]
    return suggestion if len(suggestion) >= 3 else None

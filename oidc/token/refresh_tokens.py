"""An app's rotating refresh token (SPEC §14 with §4's rules): one per grant, rotated on every use,
never outliving the citylogin session. Its text is derived, not stored:
`<session_id>.<client_id>.<grant_id>.<generation>.<kid>.s1.<sealed>.<mac>` under the key ring's refresh
secret `kid`, where `sealed` is what the grant says of the person (user, device, the scope it was given,
auth_time, amr, the key its refresh tokens are bound to) and the person's claims of that scope
(oidc.core.claims: what their ID tokens tell), encrypted with AES-GCM (SEALED_MARK, _seal) so that whoever
holds or logs the token learns none of it, and a rotation writes without reading the grant or the
account first (its transaction checks that the account still gives those claims); the grant record
keeps only the current generation and its last rotation (when, under which secret, bound to which
key). The forms before it are accepted as they were (a rolling deploy): `<...>.<kid>.<carried>.<mac>`,
where `carried` is the same list in clear base64 JSON, either with the claims (PERSON_FORM) or without
them (GRANT_SCOPE_FORM: they are read at its rotation); one whose `carried` holds the scope of the answer
it came with (the form before GRANT_SCOPE_FORM) and the earliest, without `carried`, are read first and
rotated into the sealed form. The token just rotated out, sent again within
CITYLOGIN_REFRESH_REUSE_GRACE (a retry, two tabs, two app hosts, on any process), gets that same
successor pair and ends nothing; an older one, or one after the grace, is a reuse (a copy, or a client
that lost track): that app's grant on the session ends and the app is told by back channel
(oidc.app_grants.ending), while the device's citylogin session and other apps' grants go on."""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, replace
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.config import Settings
from common.crypto.tokens import digests_equal, keyed_token
from common.database.guarded_write import GuardedWrite
from common.keys.ring_reader import RefreshSecrets
from accounts.service import AccountNotFound
from oidc.core import claims
from oidc.app_grants import ending as grants
from oidc.core import dpop
from oidc.core.live_writes import write_while_live
from oidc.core.models import AppRefresh, Grant, SignedIn
from oidc.core.store import GrantMoved, GrantStore
from sessions import service as sessions
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

_SESSION_ID = re.compile(r"^[0-9a-f-]{36}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_GRANT_ID = re.compile(r"^[0-9a-f]{16,32}$")
_KID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_CARRIED_LENGTH = 1400
_CARRIED = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_CARRIED_LENGTH}}}$")
MAX_TOKEN_LENGTH = 1600
MAX_GENERATION_DIGITS = 9
ROTATE_ATTEMPTS = 3  # a parallel rotation of the same token came first: read again, answer by the grace
# A kept token's uses at once each move the grant on: of those that read one generation one writes, so
# this many uses at once all succeed (each fails at most once per other use).
KEPT_ATTEMPTS = 8
# The form of `carried` whose scope is the grant's, as given: its seventh member. The form before (six
# members) carried the scope of the answer that gave the token, narrowed by a refresh's `scope` as it
# may have been; such a token is read first, as the earliest form is, so that its grant's scope counts.
GRANT_SCOPE_FORM = 2
# The form whose eighth member is the person's claims of the grant's scope (oidc.core.claims.packed); a token
# without it (GRANT_SCOPE_FORM) has them read at its rotation, and its successor carries them.
PERSON_FORM = 3
# The part before `sealed` in a token whose carried list is encrypted (its own part, so that a token's
# form is told by parsing it, never by trying to decode it): every token this release makes.
SEALED_MARK = "s1"
_SEAL_INFO = b"citylogin oidc refresh token carried v1"
_NONCE_BYTES = 12


@dataclass(frozen=True)
class _Parts:
    session_id: str
    client_id: str
    grant_id: str
    generation: int
    kid: str
    carried: str | None = None  # what the grant says of the person, encoded; None in the earliest form
    sealed: bool = False  # `carried` is encrypted (SEALED_MARK); clear base64 JSON in the forms before


def new_grant_id() -> str:
    return secrets.token_hex(8)


def token_text(ring: RefreshSecrets, user: SignedIn, *, client_id: str) -> str:
    """The refresh token `user` (a grant at its next generation) gets, under the secret its rotation chose
    (the newest one when it was made). It carries, sealed, the scope the grant was given, never the narrower
    one of the answer it comes with (RFC 6749 §6), and the person's claims of it when they are known and fit."""
    grant = [user.user_uuid, user.device_id, user.grant_scope, user.auth_time, list(user.amr), user.refresh_jkt]
    person = claims.packed(user.person, scope=user.grant_scope) if user.person is not None else None
    kid = user.refresh_kid or ring.newest_kid()
    secret = ring.get(kid)
    assert secret is not None  # the newest kid, or one the grace checked is still in the ring
    head = f"{user.session_id}.{client_id}.{user.grant_id}.{user.refresh_generation}.{kid}"
    carried = _seal(secret, head, [*grant, PERSON_FORM, person]) if person is not None else None
    if carried is None or len(carried) > MAX_CARRIED_LENGTH:  # no claims known, or too long: read at its rotation
        carried = _seal(secret, head, [*grant, GRANT_SCOPE_FORM])
    parts = _Parts(user.session_id, client_id, user.grant_id, user.refresh_generation, kid, carried, sealed=True)
    text = _text(ring, parts)
    if len(str(text)) > MAX_TOKEN_LENGTH:
        text = _text(ring, replace(parts, carried=_seal(secret, head, [*grant, GRANT_SCOPE_FORM])))
    assert text is not None
    return text


def _head(parts: _Parts) -> str:
    return f"{parts.session_id}.{parts.client_id}.{parts.grant_id}.{parts.generation}.{parts.kid}"


def _text(ring: RefreshSecrets, parts: _Parts) -> str | None:
    secret = ring.get(parts.kid)
    if secret is None:  # a retired or made-up kid
        return None
    head = _head(parts)
    if parts.carried is not None:
        head += f".{SEALED_MARK}.{parts.carried}" if parts.sealed else f".{parts.carried}"
    return f"{head}.{keyed_token(secret, f'oidc_refresh:{head}')}"


@functools.lru_cache(maxsize=16)
def _sealing(secret: bytes) -> tuple[AESGCM, bytes]:
    """The AES-GCM key and the nonce key a refresh secret gives (HKDF), derived once per secret."""
    derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=_SEAL_INFO).derive(secret)
    return AESGCM(derived[:32]), derived[32:]


def _seal(secret: bytes, head: str, values: list[Any]) -> str:
    """`values` encrypted and authenticated under `secret`, with the token's head (its session, client,
    grant, generation and kid) as associated data: `<nonce><ciphertext and tag>`, base64url. The nonce is
    synthetic (an HMAC of the head and the plaintext, as in SIV), not random, because a token is formed
    again, byte for byte, by any process (the grace's same successor pair, racers of one rotation): equal
    nonces come only with equal heads and plaintexts, whose ciphertexts are the same text anyway."""
    aead, nonce_key = _sealing(secret)
    body, associated = json.dumps(values, separators=(",", ":")).encode(), f"{head}.{SEALED_MARK}".encode()
    nonce = hmac.new(nonce_key, associated + b"\0" + body, hashlib.sha256).digest()[:_NONCE_BYTES]
    return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, body, associated)).decode().rstrip("=")


def _opened(secret: bytes, parts: _Parts) -> Any:
    """The values a sealed part holds; None if it does not open (under our MAC this never happens)."""
    payload = str(parts.carried)
    try:
        sealed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        body = _sealing(secret)[0].decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:],
                                           f"{_head(parts)}.{SEALED_MARK}".encode())
        return json.loads(body)
    except (binascii.Error, ValueError, InvalidTag, RecursionError):
        return None


def _parse(token: object) -> _Parts | None:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) not in (6, 7, 8) or (len(parts) == 8 and parts[5] != SEALED_MARK):
        return None
    session_id, client_id, grant_id, generation, kid = parts[:5]
    carried = parts[-2] if len(parts) > 6 else None
    if not (_SESSION_ID.match(session_id) and _CLIENT_ID.match(client_id) and _GRANT_ID.match(grant_id)
            and generation.isdigit() and len(generation) <= MAX_GENERATION_DIGITS and generation.isascii()
            and _KID.match(kid) and (carried is None or _CARRIED.match(carried))):
        return None
    return _Parts(session_id, client_id, grant_id, int(generation), kid, carried, sealed=len(parts) == 8)


def _checked(ring: RefreshSecrets, token: object) -> _Parts | None:
    """The parts of one of our refresh tokens whose MAC holds; None for anything else."""
    parts = _parse(token)
    expected = _text(ring, parts) if parts else None
    if parts is None or expected is None or not digests_equal(expected, str(token)):
        return None
    return parts


def presented(ctx: AppContext, token: object) -> AppRefresh | None:
    """The grant a presented refresh token is of, read now, if its MAC holds and the grant is still the
    one it was issued for and not revoked; None for anything else (invalid_grant)."""
    parts = _checked(ctx.refresh_secrets, token)
    return _read(ctx, parts, text=str(token)) if parts else None


def _read(ctx: AppContext, parts: _Parts, *, text: str) -> AppRefresh | None:
    grant = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=parts.session_id,
                                                                   client_id=parts.client_id)
    if grant is None or not grant.refresh_gen or not digests_equal(grant.grant_id, parts.grant_id):
        return None
    return AppRefresh(grant=grant, generation=parts.generation, text=text)


def presented_for_rotation(ctx: AppContext, token: object) -> AppRefresh | None:
    """presented() for the refresh grant: a token that carries what its grant says of the person is not
    read (the rotation's write holds it to the grant, rotate()); one of the earlier form is. Nothing is
    written yet: the client's authentication and the scope are checked first."""
    parts = _checked(ctx.refresh_secrets, token)
    if parts is None:
        return None
    if parts.carried is None:
        return _read(ctx, parts, text=str(token))
    carried = _carried_grant(ctx.refresh_secrets, parts)
    if carried is None:
        return None
    grant, form, person = carried
    if form < GRANT_SCOPE_FORM:
        return _read(ctx, parts, text=str(token))
    return AppRefresh(grant=grant, generation=parts.generation, unread=True, text=str(token), person=person)


def _carried_grant(ring: RefreshSecrets, parts: _Parts) -> tuple[Grant, int, dict[str, Any] | None] | None:
    """The grant as a token's `carried` part (under its MAC; opened first if sealed) says it was, at the
    token's generation, the form of the list it holds (PERSON_FORM, GRANT_SCOPE_FORM, or 1 for the form
    before it) and the person's claims it carries (PERSON_FORM; None before)."""
    secret = ring.get(parts.kid)
    values: Any
    try:
        if parts.sealed:
            values = _opened(secret, parts) if secret is not None else None
        else:
            values = json.loads(base64.urlsafe_b64decode(str(parts.carried) + "=" * (-len(str(parts.carried)) % 4)))
        user_uuid, device_id, scope, auth_time, amr, jkt, *rest = values
    except (ValueError, TypeError, RecursionError):
        return None  # under our MAC this never happens; refused all the same
    if not (isinstance(user_uuid, str) and isinstance(device_id, str) and isinstance(scope, str)
            and isinstance(auth_time, int) and isinstance(amr, list) and (jkt is None or isinstance(jkt, str))
            and (rest in ([], [GRANT_SCOPE_FORM]) or (len(rest) == 2 and rest[0] == PERSON_FORM))):
        return None
    person = claims.unpacked(rest[1], scope=scope) if rest and rest[0] == PERSON_FORM else None
    if rest and rest[0] == PERSON_FORM and person is None:
        return None
    form = rest[0] if rest else 1
    return Grant(session_id=parts.session_id, client_id=parts.client_id, grant_id=parts.grant_id,
                 user_uuid=user_uuid, device_id=device_id, scope=scope, auth_time=auth_time,
                 amr=[str(a) for a in amr], refresh_gen=parts.generation, jkt=jkt), form, person


def kept(ctx: AppContext, refresh: AppRefresh, *, dpop_required: bool,
         dpop_algorithms: tuple[str, ...] | None = None) -> SignedIn:
    """A FAPI 2.0 app's refresh (FAPI 2.0 SP §5.3.2.1-10: no rotation): the person behind the grant's next
    access token, answered with the same refresh token, while the session lives. The grant moves on a
    generation (one conditional write with the session's liveness; a parallel use that came first is read
    again), which names the new access token; any token of the grant counts, so a client that lost an
    answer retries with the token it holds. The token is bound to the client, whose private_key_jwt the
    token endpoint checked, not to a DPoP key (RFC 9449 §5): the new access token is bound to the key of
    this request's proof, which is required."""
    key = dpop.request_key(bound_to=None, required=dpop_required, algorithms=dpop_algorithms)
    grant = refresh.grant
    for _ in range(KEPT_ATTEMPTS):
        grant = _read_again(ctx, grant)  # the grant as it stands: a kept token's generation lags it
        if refresh.generation > grant.refresh_gen:
            raise InvalidGrantError()
        try:
            return replace(_next(ctx, grant, key=key, person=None), kept_refresh=refresh.text)
        except GrantMoved:
            continue
    raise InvalidGrantError(f"This refresh token was used more than {KEPT_ATTEMPTS} times at once: try again.")


def rotate(ctx: AppContext, refresh: AppRefresh, *, dpop_required: bool) -> SignedIn:
    """The person behind the grant's next tokens, while the session lives. The current token moves
    the grant to the next generation (one conditional write with the session's liveness); the one
    just rotated out, within the grace, gets the same successor pair again, writing nothing; any
    older one ends the app's grant (reuse). A bound refresh token counts only with a proof by its
    key, before anything else is looked at. A token whose grant was not read (it carries what the
    grant says) is first taken as the current one: the write's condition holds it to the grant, and a
    refusal reads the grant to answer as above. The person's claims the token carries (read now for one
    that carries none) are checked by the same write: an account that changed since gives its claims as
    it is now, and the write is tried again with them."""
    grant = refresh.grant
    key = dpop.request_key(bound_to=grant.jkt, required=dpop_required)
    person = refresh.person
    for _ in range(ROTATE_ATTEMPTS):
        if refresh.generation > grant.refresh_gen:
            raise InvalidGrantError()
        if refresh.generation < grant.refresh_gen:
            return _rotated_out(ctx, grant, generation=refresh.generation)
        if person is None:  # a token that carries no claims: the account is read (once) for them
            person = claims.of_user(ctx, user_uuid=grant.user_uuid, scope=grant.scope)
        try:
            return _next(ctx, grant, key=key, person=person)
        except GrantMoved:
            grant = _read_again(ctx, grant)
        except claims.PersonChanged as changed:
            if changed.account is None:
                raise AccountNotFound() from None
            person = claims.of_account(changed.account, scope=grant.scope)
    raise InvalidGrantError("This refresh token was used at the same moment.")


def _next(ctx: AppContext, grant: Grant, *, key: str | None, person: dict[str, Any] | None) -> SignedIn:
    """Rotate: the grant's next generation, recorded with what forms its pair again (its moment, the
    newest refresh secret, the access token's key), in one transaction with the session's liveness
    (not read first: the write's check of it refuses a session that has ended) and, given `person`, the
    check that the account still gives those claims of the grant's scope. GrantMoved if a parallel use
    rotated first; PersonChanged if the account changed."""
    now, kid = int(ctx.now().timestamp()), ctx.refresh_secrets.newest_kid()
    item = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).rotate_item(
        grant, generation=grant.refresh_gen, now=now, kid=kid, jkt=key)
    live = sessions.live_check_of(ctx, session_id=grant.session_id, user_uuid=grant.user_uuid,
                                  device_id=grant.device_id)
    writes = [live, GuardedWrite(item=item, refusal=GrantMoved)]
    given = (claims.still_given(ctx, user_uuid=grant.user_uuid, person=person, scope=grant.scope)
             if person is not None else None)
    if given is not None:
        writes.append(given)  # last: a session's end or a parallel rotation is told first
    write_while_live(ctx.dynamodb, writes)
    return replace(grant.signed_in(refresh_generation=grant.refresh_gen + 1), jkt=key, issued_epoch=now,
                   refresh_kid=kid, person=person)


def _read_again(ctx: AppContext, grant: Grant) -> Grant:
    """The grant after a refused rotation: the same grant, moved on by a parallel use; invalid_grant if
    it was replaced or revoked meanwhile."""
    moved = GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=grant.session_id,
                                                                 client_id=grant.client_id)
    if moved is None or moved.grant_id != grant.grant_id:
        raise InvalidGrantError("This app's grant on the session was replaced or has ended.")
    return moved


def _rotated_out(ctx: AppContext, grant: Grant, *, generation: int) -> SignedIn:
    """A token older than the current one: within the grace the pair its rotation gave, again
    (§4: parallel refreshes of one app must not log it out); else a reuse, which ends the app's grant
    on the session and tells the app, and nothing else."""
    # Neither path writes with the session's check (the pair again writes nothing; a reuse of an
    # ended session's token has nothing left to end), so the session is read here.
    if sessions.live_session(ctx, session_id=grant.session_id, user_uuid=grant.user_uuid,
                             device_id=grant.device_id) is None:
        raise InvalidGrantError("The citylogin session of this refresh token has ended.")
    if _within_grace(ctx.settings, grant, generation=generation, now=ctx.epoch()):
        return _same_successor(ctx, grant)
    audit(AuditEvent.REFRESH_TOKEN_REUSED, user_uuid=grant.user_uuid, device_id=grant.device_id,
          session_id=grant.session_id, generation=generation, client_id=grant.client_id)
    grants.end_grant(ctx, session_id=grant.session_id, client_id=grant.client_id, reason=grants.REFRESH_REUSE,
                     grant_id=grant.grant_id)
    raise InvalidGrantError("This refresh token was used before: the app's grant on this session has ended.")


def _within_grace(settings: Settings, grant: Grant, *, generation: int, now: int) -> bool:
    """The token the grant's last rotation (recorded by this release) retired, CITYLOGIN_REFRESH_REUSE_GRACE
    seconds before `now` (epoch seconds) at most."""
    return (generation == grant.refresh_gen - 1 and grant.rotated_gen == grant.refresh_gen
            and now - grant.rotated_epoch <= settings.refresh_reuse_grace)


def _same_successor(ctx: AppContext, grant: Grant) -> SignedIn:
    """The person behind the last rotation's pair, formed again as it was: its moment, refresh secret
    and key (the access token's signature is deterministic, EdDSA). Its secret retired since (a ring
    rotation within the grace): invalid_grant, ending nothing."""
    if grant.refresh_kid is None or ctx.refresh_secrets.get(grant.refresh_kid) is None:
        raise InvalidGrantError("This refresh token was rotated; use its successor.")
    # The claims as the account gives them now, as the rotation's write found them (unless they changed
    # since): the successor refresh token carries them, and the ID token tells them.
    person = claims.of_user(ctx, user_uuid=grant.user_uuid, scope=grant.scope)
    return replace(grant.signed_in(refresh_generation=grant.refresh_gen), jkt=grant.rotated_jkt,
                   issued_epoch=grant.rotated_epoch, refresh_kid=grant.refresh_kid, person=person)


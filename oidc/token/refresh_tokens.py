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
rotated into the sealed form. How a use moves the grant on (its rotation, the reuse grace) is
oidc.token.refresh_rotation's."""
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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.crypto.tokens import digests_equal, keyed_token
from common.keys.ring_reader import RefreshSecrets
from oidc.core import claims
from oidc.core.models import AppRefresh, Grant, SignedIn
from oidc.core.store import GrantStore
from common.runtime.context import AppContext

_SESSION_ID = re.compile(r"^[0-9a-f-]{36}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_GRANT_ID = re.compile(r"^[0-9a-f]{16,32}$")
_KID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
MAX_CARRIED_LENGTH = 1400
_CARRIED = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_CARRIED_LENGTH}}}$")
MAX_TOKEN_LENGTH = 1600
MAX_GENERATION_DIGITS = 9
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

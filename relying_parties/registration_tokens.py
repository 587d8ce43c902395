"""Initial access tokens (RFC 7591 §3; SPEC §14): an operator makes one (`citylogin apps registration-token`,
the admin API, the console) for whoever may register apps at POST /oidc/register, with an expiry and a
number of registrations. The token is shown once and kept only as its digest; it reads `<id>.<secret>`,
its id naming its record. Making, using and revoking one is audited."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Callable

from relying_parties.models import RegistrationToken
from relying_parties.registration_token_store import RegistrationTokenStore, TokenMissing
from common.errors import ErrorCode, NotFound
from common.timefmt import iso
from common.crypto.tokens import digests_equal, new_token, token_digest
from common.database.guarded_write import GuardedWrite
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

PURPOSE = "initial_access_token"
DEFAULT_EXPIRES_IN = 24 * 3600
MAX_EXPIRES_IN = 366 * 24 * 3600
MAX_USES = 10_000
_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")  # new_token(32): 32 bytes, unpadded base64url
_DURATION = re.compile(r"(?P<count>[0-9]{1,9})(?P<unit>[smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class RegistrationTokenNotFound(NotFound):
    code, detail = ErrorCode.NOT_FOUND, "No initial access token has this id."


@dataclass(frozen=True)
class NewRegistrationToken:
    """A token as handed out once, when it is made."""

    record: RegistrationToken
    token: str


def store(ctx: AppContext) -> RegistrationTokenStore:
    return RegistrationTokenStore(ctx.dynamodb, ctx.tables.apps)


def duration_seconds(text: str) -> int | None:
    """`text` as seconds: a whole number with an optional unit (s, m, h, d), as `--expires-in 7d`; None if it
    is not one or is outside 1 s .. MAX_EXPIRES_IN."""
    matched = _DURATION.fullmatch(text.strip())
    if matched is None:
        return None
    seconds = int(matched["count"]) * _UNIT_SECONDS[matched["unit"]]
    return seconds if 1 <= seconds <= MAX_EXPIRES_IN else None


def make_token(ctx: AppContext, *, expires_in: int = DEFAULT_EXPIRES_IN, uses: int = 1,
               created_by: str | None = None) -> NewRegistrationToken:
    """A new initial access token, good for `uses` registrations until `expires_in` seconds from now."""
    if not 1 <= expires_in <= MAX_EXPIRES_IN or not 1 <= uses <= MAX_USES:
        raise ValueError("expires_in or uses out of range")  # the callers' models bound both
    now = ctx.now()
    token_id = secrets.token_hex(8)
    token = f"{token_id}.{new_token(32)}"
    record = RegistrationToken(token_id=token_id, digest=token_digest(token, purpose=PURPOSE), created_at=iso(now),
                               expires_epoch=int(now.timestamp()) + expires_in, uses=uses, uses_left=uses,
                               created_by=created_by)
    store(ctx).create(record)
    audit(AuditEvent.REGISTRATION_TOKEN_CREATED, initial_access=token_id, uses=uses,
          expires_epoch=record.expires_epoch)
    return NewRegistrationToken(record=record, token=token)


def list_tokens(ctx: AppContext) -> list[RegistrationToken]:
    """Every initial access token kept (spent and expired ones until the TTL sweeps them), newest first."""
    return sorted(store(ctx).list(), key=lambda token: (token.created_at, token.token_id), reverse=True)


def revoke_token(ctx: AppContext, *, token_id: str) -> None:
    try:
        store(ctx).delete(token_id)
    except TokenMissing:
        raise RegistrationTokenNotFound() from None
    audit(AuditEvent.REGISTRATION_TOKEN_REVOKED, initial_access=token_id)


def usable(ctx: AppContext, token: str) -> RegistrationToken | None:
    """The record of `token` if it is one this server made, unexpired and with a use left; None otherwise. The
    digests are compared in constant time, whether or not the id names a record."""
    token_id, dot, secret = token.partition(".")
    if not dot or not _ID.fullmatch(token_id) or not _SECRET.fullmatch(secret):
        return None
    record = store(ctx).get(token_id)
    known = record.digest if record else token_digest(new_token(16), purpose=PURPOSE)
    if not digests_equal(token_digest(token, purpose=PURPOSE), known) or record is None:
        return None
    if record.expires_epoch <= ctx.epoch() or record.uses_left <= 0:
        return None
    return record


def use(ctx: AppContext, record: RegistrationToken, *, refusal: Callable[[], Exception]) -> GuardedWrite:
    """One use of the token, as an entry of the transaction that writes the app it registers: refused
    (`refusal`) if a racing registration took its last use, or it was revoked or expired meanwhile."""
    item = store(ctx).use_item(record.token_id, digest=record.digest, now=ctx.epoch())
    return GuardedWrite(item=item, refusal=refusal)

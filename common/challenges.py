"""Challenges: single-use nonces a device signs to prove it holds its key (SPEC §4). Issued by
`POST /login/challenge`; consumed by the login and by certificate renewal, each signing under
its own purpose prefix."""
from __future__ import annotations

import base64
import binascii

from common.context import AppContext
from common.crypto import new_token, token_digest
from common.one_time_tokens import OneTimeTokenStore

CHALLENGE_TTL = 60
_KIND = "challenge"


def _store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def _now(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


def issue_challenge(ctx: AppContext) -> str:
    """A new challenge, stored only as its digest, valid CHALLENGE_TTL seconds."""
    challenge = new_token(32)
    _store(ctx).create(digest=token_digest(challenge, purpose=_KIND), kind=_KIND,
                       expires_epoch=_now(ctx) + CHALLENGE_TTL)
    return challenge


def consume_challenge(ctx: AppContext, challenge: str) -> bool:
    """Use up `challenge` (one conditional delete); True if it was issued here, unused and unexpired."""
    return _store(ctx).consume(digest=token_digest(challenge, purpose=_KIND), kind=_KIND,
                               now=_now(ctx)) is not None


def signature_bytes(signature: str) -> bytes | None:
    """The raw bytes of a base64 or base64url signature; None if it is neither."""
    standard = signature.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None

"""A session's tokens: the access token (a JWT, bound to the device key when the session is) and the
refresh token, derived from the key ring's secret, that names its holder (SPEC §4, §6, §12)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from common.crypto.tokens import keyed_token
from common.keys.ring_reader import RefreshSecrets
from sessions import binding
from sessions.errors import InvalidRefreshToken
from sessions.models import Holder, SessionRecord, TokenPair
from common.runtime.context import AppContext

REFRESH_PURPOSE = "refresh"


def refresh_token_of(ring: RefreshSecrets, holder: Holder | SessionRecord, generation: int, kid: str | None) -> str:
    """<session_id>.<generation>.<kid>.<carried>.<mac> under the ring's secret `kid`, where `carried`
    names the session's user, device and end, so that a refresh writes without reading first. A
    session from before the key ring (kid None) keeps its form, <session_id>.<generation>.<mac>."""
    # Derived, not random: within the grace window the same successor can be handed out again
    # while only its digest is stored (SPEC §4, §6).
    if kid is None:
        return refresh_token_text(ring, holder.session_id, generation, None, None)
    return refresh_token_text(ring, holder.session_id, generation, kid, _carried(holder))


def refresh_token_text(secrets: RefreshSecrets, session_id: str, generation: int, kid: str | None,
                       carried: str | None) -> str:
    """A refresh token's text in any of its forms (a 4-part one, <session_id>.<generation>.<kid>.<mac>,
    carries nothing: made before tokens carried their holder)."""
    secret = secrets.get(kid or secrets.oldest_kid())
    if secret is None:  # a kid the ring does not hold (retired, or made up)
        raise InvalidRefreshToken()
    if carried is not None:
        mac = keyed_token(secret, f"refresh:{session_id}:{generation}:{carried}")
        return f"{session_id}.{generation}.{kid}.{carried}.{mac}"
    mac = keyed_token(secret, f"refresh:{session_id}:{generation}")
    return f"{session_id}.{generation}.{kid}.{mac}" if kid else f"{session_id}.{generation}.{mac}"


def _carried(holder: Holder | SessionRecord) -> str:
    data = json.dumps([holder.user_uuid, holder.device_id, holder.expires_epoch], separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def carried_holder(session_id: str, carried: str) -> Holder:
    try:
        user_uuid, device_id, expires_epoch = json.loads(base64.urlsafe_b64decode(carried + "=" * (-len(carried) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise InvalidRefreshToken() from None
    if not (isinstance(user_uuid, str) and 0 < len(user_uuid) <= 64 and isinstance(device_id, str)
            and 0 < len(device_id) <= 64 and isinstance(expires_epoch, int)):
        raise InvalidRefreshToken()
    return Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id, expires_epoch=expires_epoch)


def token_pair(ctx: AppContext, session: Holder | SessionRecord, *, generation: int, issued_epoch: int,
                refresh_kid: str | None) -> TokenPair:
    claims: dict[str, Any] = {"sub": session.user_uuid, "sid": session.session_id, "did": session.device_id,
                    "jti": f"{session.session_id}.{generation}"}
    if session.jkt:  # bound: usable only with a proof by this key (SPEC §12)
        claims["cnf"] = {"jkt": session.jkt}
    # A token never outlives its session's max lifetime: an app that checks tokens locally (the
    # guard, SPEC §11) learns of ends made by a write from the feed, but this one is made by time.
    ttl = max(1, min(ctx.settings.access_token_ttl, session.expires_epoch - issued_epoch))
    # EdDSA is deterministic: the same claims and time give the same token, hence the same pair.
    access = ctx.jwt.sign(claims, ttl_seconds=ttl, now=datetime.fromtimestamp(issued_epoch, timezone.utc))
    return TokenPair(access_token=access,
                     refresh_token=refresh_token_of(ctx.refresh_secrets, session, generation, refresh_kid),
                     expires_in=max(0, issued_epoch + ttl - ctx.epoch()),
                     token_type=binding.DPOP if session.jkt else "Bearer")

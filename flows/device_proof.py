"""A browser's device proving it holds its key, for the flows that act on its live session (an app's
single sign-on, an app's sign-out): one batch read (the device, its account's presence, the challenge,
and what the flow reads beside them), the signature under the flow's own purpose, the challenge used up
whatever the outcome, then the device's live session. No Flask here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.database.batch_read import KeyRead, read_together
from devices import challenges
from devices import service as devices
from devices.models import DeviceRecord
from sessions import service as sessions
from sessions.models import Presence, SessionRecord
from common.runtime.context import AppContext

DEVICE, PRESENCE, CHALLENGE = "proof.device", "proof.presence", "proof.challenge"


@dataclass(frozen=True)
class ProvenDevice:
    device: DeviceRecord
    session: SessionRecord | None  # its live session, if it has one
    facts: dict[str, Any]  # the batch read, the flow's own reads included


def prove(ctx: AppContext, *, client_cert: str, challenge: str, signature: str, purpose: str,
          reads: dict[str, KeyRead[Any]] | None = None) -> ProvenDevice:
    """The device of `client_cert`, once it signed `purpose` + `challenge` (InvalidProof otherwise; a
    challenge spent by a parallel request too), with its live session and the batch read."""
    presented = devices.presented_certificate(client_cert)
    facts = read_together(ctx.dynamodb, {
        DEVICE: devices.device_read(ctx.tables, user_uuid=presented.user_uuid, device_id=presented.device_id),
        PRESENCE: sessions.presence_read(ctx.tables, user_uuid=presented.user_uuid),
        CHALLENGE: challenges.challenge_read(ctx.tables, challenge, now=ctx.epoch()), **(reads or {})})
    try:
        device = devices.device_for_presented(ctx, presented, user_uuid=presented.user_uuid, record=facts[DEVICE])
        devices.check_signed_challenge(device, purpose=purpose, challenge=challenge, signature=signature,
                                       challenge_was_valid=facts[CHALLENGE])
    finally:  # single-use whatever the outcome
        used = challenges.consume_challenge(ctx, challenge)
    if not used:  # a parallel request spent it between the read and now
        raise devices.InvalidProof("The challenge is unknown, expired or already used.")
    return ProvenDevice(device=device, session=_live_session(ctx, device, facts[PRESENCE]), facts=facts)


def _live_session(ctx: AppContext, device: DeviceRecord, presence: Presence) -> SessionRecord | None:
    """The device's live session: the one its account's presence lists for it, read again to be sure."""
    entry = next((e for e in presence.entries.values() if e.device_id == device.device_id), None)
    if entry is None:
        return None
    return sessions.live_session(ctx, session_id=entry.session_id, user_uuid=device.user_uuid,
                                 device_id=device.device_id)

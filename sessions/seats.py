"""Opening a session under the concurrency invariant (SPEC §5), and a device's relabelling under it.
The login flow owns the attempt: read_seats (fetch), its policy's decision, take_seat (the one
write), and again from a fresh read when take_seat answers PresenceMoved."""
from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from common.errors import ServiceUnavailable
from common.timefmt import iso
from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite
from sessions.context import history_store, liveness, session_store
from sessions.endings import ending_shard
from sessions.history_store import HistoryStore
from sessions.models import (Ending, HistoryResult, Holder, OpenedSession, Presence, PresenceEntry, PresenceMoved,
                             RevokeReason, Seats, SessionRecord)
from sessions.store import ExtraWriteRefused, IdleSessionsInUse, PresenceChanged, SessionStore, retention_ttl
from sessions.tokens import REFRESH_PURPOSE, refresh_token_of, token_pair
from common.runtime.context import AppContext

RELABEL_ATTEMPTS = 60

# RFC 8176 methods of a login (SPEC §14 amr): the device key always, with the password or a passkey.
PASSWORD_AMR = ("hwk", "pwd")
PASSKEY_AMR = ("hwk", "pop", "user")
# An upstream provider's answer in the password's place (SPEC §16); "fed" as OpenID Connect's EAP ACR values use it.
FEDERATED_AMR = ("hwk", "fed")

# The login flow owns the attempt: read_seats (fetch), its policy's decision, take_seat (the one
# write), and again from a fresh read when take_seat answers PresenceMoved.

def read_seats(ctx: AppContext, *, user_uuid: str, device_id: str, presence: Presence | None = None,
               after: PresenceMoved | None = None) -> Seats:
    """The user's presence as a login of `device_id` sees it now. `presence`, if given, is a fresh
    read to start from; `after` is what the previous attempt's take_seat answered (a contended
    record is read again after a short random pause)."""
    learned = after or PresenceMoved()
    if learned.contended:
        time.sleep(random.uniform(0.005, 0.02 * min(learned.attempts, 10)))
    presence = _with_activity(presence or session_store(ctx).get_presence(user_uuid), learned.seen_since)
    now = ctx.epoch()
    return Seats(device_id=device_id, presence=presence, now=now,
                 live=presence.live(now=now, liveness=liveness(ctx.settings)), learned=learned)


def take_seat(ctx: AppContext, seats: Seats, *, evicted: list[PresenceEntry], device_name: str, device_class: str,
              ip: str | None, user_agent: str | None, extra_writes: Sequence[GuardedWrite] = (),
              jkt: str | None = None, amr: Sequence[str] = PASSWORD_AMR,
              session_id: str | None = None, screen_of: str | None = None, app_of: tuple[str, str] | None = None,
              redeem_by: int | None = None, provider: str | None = None) -> OpenedSession | PresenceMoved:
    """Log `seats.device_id` in, displacing `evicted`, in one transaction with `extra_writes`, and
    only if nobody changed the presence since `seats` was read; else PresenceMoved (read again).
    Entries dropped as idle end their sessions in the same transaction, so a session the presence
    stops counting is never usable. A refused extra write raises its own `refusal`. With `jkt` the
    session is bound to that device key (SPEC §12). `session_id`: the new session's id, drawn by the
    caller whose extra writes name it (a screen's approval, flows.device_approval), else a new one;
    `screen_of`: the app a screen's session is for (SessionRecord.screen_of), `app_of` its (client_id, name)
    as the seat lists it; `redeem_by`: its code's
    expiry, when the session (and its seat) ends unless the screen redeems it first (screen_redeemed);
    `provider`: the upstream provider's display name whose answer stood in for the password (its history row)."""
    store, rule, now, device_id = session_store(ctx), liveness(ctx.settings), seats.now, seats.device_id
    session = new_session(ctx, user_uuid=seats.presence.user_uuid, device_id=device_id, device_name=device_name,
                           device_class=device_class, ip=ip, user_agent=user_agent, now=now, jkt=jkt, amr=amr,
                           login_seq=seats.presence.next_login_seq(), session_id=session_id, screen_of=screen_of,
                           redeem_by=redeem_by, screen_name=app_of[1] if app_of else None)
    kept = {e.device_id: e for e in seats.others if e not in evicted}
    kept[device_id] = PresenceEntry(device_id=device_id, session_id=session.session_id,
                                    device_name=device_name, login_epoch=now, last_seen_epoch=now,
                                    expires_epoch=session.expires_epoch, ip=ip, device_class=device_class,
                                    login_seq=session.login_seq, user_agent=session.user_agent,
                                    app_names={" ".join(app_of)} if app_of else None)
    user_uuid = seats.presence.user_uuid
    displaced = [_ending(user_uuid, e, RevokeReason.DISPLACED, by_device=device_id) for e in evicted]
    if device_id in seats.presence.entries:  # a re-login from this device replaces its own session
        displaced.append(_ending(user_uuid, seats.presence.entries[device_id], RevokeReason.LOGGED_OUT,
                                 by_device=device_id))
    idle = [_ending(user_uuid, e, RevokeReason.IDLE_TIMEOUT) for e in seats.presence.entries.values()
            if e.device_id != device_id and e not in seats.live and now < e.expires_epoch
            and e.session_id not in seats.learned.gone]
    extra = list(extra_writes)
    try:
        store.open_session(before=seats.presence, entries=kept, session=session, displaced=displaced,
                           idle=idle, idle_cutoff=rule.idle_cutoff(now), at=session.created_at,
                           at_ms=ctx.epoch_ms(), extra_writes=[w.item for w in extra],
                           unconditional=[_login_row(history_store(ctx), at=ctx.now(), session=session,
                                                     evicted=evicted, provider=provider)])
    except ExtraWriteRefused as refused:
        raise extra[refused.index].refusal() from None
    except IdleSessionsInUse as in_use:
        return _learned_in_use(store, in_use.session_ids, seats.learned)
    except PresenceChanged:
        return replace(seats.learned, attempts=seats.learned.attempts + 1, contended=True)
    return OpenedSession(session=session, evicted=evicted,
                         tokens=token_pair(ctx, session, generation=1, issued_epoch=now,
                                            refresh_kid=session.refresh_kid))


def _ending(user_uuid: str, entry: PresenceEntry, reason: str, *, by_device: str | None = None) -> Ending:
    return Ending(session_id=entry.session_id, user_uuid=user_uuid, device_id=entry.device_id, reason=reason,
                  by_device=by_device)


def _learned_in_use(store: SessionStore, session_ids: list[str], learned: PresenceMoved) -> PresenceMoved:
    seen_since, gone = dict(learned.seen_since), set(learned.gone)
    _note_in_use(store, session_ids, seen_since=seen_since, gone=gone)
    return PresenceMoved(attempts=learned.attempts + 1, seen_since=seen_since, gone=frozenset(gone))


def relabel_device(ctx: AppContext, *, user_uuid: str, device_id: str, device_class: str,
                   check_class: Callable[[list[PresenceEntry]], None], extra_writes: list[GuardedWrite]) -> None:
    """Make `device_id` count as `device_class` (SPEC §5): if it is logged in, `check_class(the
    other live entries)` raises to refuse, and its session counts under the new class from the
    moment the presence record is rewritten, in one transaction with `extra_writes` (the device's
    record) and only if nobody changed the presence meanwhile; a refused extra raises its refusal."""
    store, rule = session_store(ctx), liveness(ctx.settings)
    extra = list(extra_writes)
    seen_since: dict[str, int] = {}
    gone: set[str] = set()
    for attempt in range(RELABEL_ATTEMPTS):
        presence = _with_activity(store.get_presence(user_uuid), seen_since)
        now = ctx.epoch()
        live = presence.live(now=now, liveness=rule)
        mine = next((e for e in live if e.device_id == device_id and e.device_class != device_class), None)
        if mine:  # logged in, and counted under another class until now
            check_class([e for e in live if e is not mine])
        entries = {e.device_id: e for e in live}
        if mine:
            entries[device_id] = replace(mine, device_class=device_class)
        idle = [_ending(user_uuid, e, RevokeReason.IDLE_TIMEOUT) for e in presence.entries.values()
                if e not in live and now < e.expires_epoch and e.session_id not in gone]
        try:
            store.relabel(before=presence, entries=entries, session_id=mine.session_id if mine else None,
                          device_class=device_class, idle=idle, idle_cutoff=rule.idle_cutoff(now),
                          at=iso(ctx.now()), end_epoch=now, at_ms=ctx.epoch_ms(), extra_writes=[w.item for w in extra])
            return
        except ExtraWriteRefused as refused:
            raise extra[refused.index].refusal() from None
        except IdleSessionsInUse as in_use:
            _note_in_use(store, in_use.session_ids, seen_since=seen_since, gone=gone)
        except PresenceChanged:
            time.sleep(random.uniform(0.005, 0.02 * min(attempt + 1, 10)))
    raise ServiceUnavailable("Too many simultaneous changes for this account; try again.")


def _note_in_use(store: SessionStore, session_ids: list[str], *, seen_since: dict[str, int], gone: set[str]) -> None:
    # The session records are the truth: a touch may not have reached the presence entry.
    for session_id in session_ids:
        record = store.get(session_id)
        if record is None:
            gone.add(session_id)
        else:
            seen_since[session_id] = record.last_seen_epoch


def _login_row(store: HistoryStore, *, at: datetime, session: SessionRecord,
               evicted: list[PresenceEntry], provider: str | None) -> dict[str, Any]:
    """The login's history row, as an entry of its transaction: a login that commits has its row, one
    that does not leaves none. A put that no condition refuses, so it never refuses a login itself."""
    return store.put_item(
        user_uuid=session.user_uuid, at=at, result=HistoryResult.SUCCESS.value, device_id=session.device_id,
        ip=session.ip, user_agent=session.user_agent,
        evicted=[{"device_id": e.device_id, "device_name": e.device_name} for e in evicted], provider=provider)


def _with_activity(presence: Presence, seen_since: dict[str, int]) -> Presence:
    entries = {device: replace(e, last_seen_epoch=max(e.last_seen_epoch, seen_since[e.session_id]))
               if seen_since.get(e.session_id) else e for device, e in presence.entries.items()}
    return replace(presence, entries=entries)


def new_session(ctx: AppContext, *, user_uuid: str, device_id: str, device_name: str, device_class: str,
                 ip: str | None, user_agent: str | None, now: int, jkt: str | None,
                 amr: Sequence[str], login_seq: int | None = None, session_id: str | None = None,
                 screen_of: str | None = None, redeem_by: int | None = None,
                 screen_name: str | None = None) -> SessionRecord:
    session_id, refresh_kid = session_id or str(uuid.uuid4()), ctx.refresh_secrets.newest_kid()
    ends = now + ctx.settings.session_max_lifetime if redeem_by is None else \
        min(redeem_by, now + ctx.settings.session_max_lifetime)
    return SessionRecord(
        session_id=session_id, user_uuid=user_uuid, device_id=device_id, device_name=device_name,
        created_at=iso(ctx.now()), login_epoch=now, last_seen_epoch=now,
        expires_epoch=ends, refresh_gen=1,
        refresh_digest=token_digest(refresh_token_of(ctx.refresh_secrets, Holder(
            session_id=session_id, user_uuid=user_uuid, device_id=device_id,
            expires_epoch=now + ctx.settings.session_max_lifetime), 1, refresh_kid), purpose=REFRESH_PURPOSE),
        refresh_kid=refresh_kid, rotated_epoch=now, ip=ip, user_agent=(user_agent or "")[:256] or None,
        expires_ttl=retention_ttl(now + ctx.settings.session_max_lifetime), device_class=device_class,
        live_shard=ending_shard(session_id), login_seq=login_seq,
        ends_at=min(ends, now + liveness(ctx.settings).idle_span), jkt=jkt, amr=list(amr), screen_of=screen_of,
        live_screen_of=screen_of, unredeemed=True if redeem_by is not None else None, screen_name=screen_name)

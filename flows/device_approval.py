"""A person approves a screen's user code (RFC 8628 §3.3, SPEC §14 and §5): the screen — a TV, a console,
a command line — becomes a device of the account with a session of its own, under the device limit as a
login is. Its class is the app's (`tv` unless the app says otherwise), its name the one the person gave.
Over the limit the policy of a login applies: `ask` answers 409 concurrent_login (the person is asked
"in use elsewhere — continue?" and sends the approval again with force), `reject` 409
concurrent_login_rejected, `force` displaces; class limits and the eviction order as for any login.

One transaction opens the screen's session (the presence's conditional write: no interleaving of
approvals and logins on any number of processes puts the account over its limit), marks the request
approved, uses the user code up and writes the "new sign-in" mail with its "Wasn't you?" link (SPEC §7:
a phished code leaves a trace the person hears of), while the account is not locked, the app is
registered and the approving session is live. The session lasts until the code expires unless the
screen redeems it first, so that an approval never redeemed frees its seat then. The screen's next poll
gets the tokens of that session (oidc.device.flow). The approver is the browser's signed-in session, or
its device proving its key (single sign-on). No Flask here."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from accounts import user_service as users
from relying_parties import service as apps
from common.errors import ServiceUnavailable
from common.database.guarded_write import GuardedWrite
from devices import concurrency_policy
from flows import device_proof, in_use, not_me
from accounts.models import UserRecord
from common.mail.notifier import Notifier, Queued, device_class_name, device_facts, localized_message
from oidc.app_grants import consents
from oidc.device import flow as device_flow
from oidc.device.models import ScreenApproved, ScreenApproval, ScreenSignIn
from sessions import service as sessions
from sessions.models import OpenedSession, Principal
from common.web.audit import AuditEvent, audit
from common.web.caller import Caller
from common.runtime.context import AppContext

APPROVE_PURPOSE = "citylogin-device-flow:"  # single sign-on: the device signs this prefix + the challenge
OPEN_ATTEMPTS = 60  # reads of the presence before an approval gives up (503), as a login


@dataclass(frozen=True)
class _Approver:
    user_uuid: str
    session_id: str
    device_id: str
    amr: tuple[str, ...]


def approve(ctx: AppContext, *, principal: Principal, body: ScreenApproval, caller: Caller) -> ScreenApproved:
    """The signed-in browser's person approves `body.user_code`."""
    session = principal.session
    return _approve(ctx, approver=_Approver(user_uuid=principal.user_uuid, session_id=principal.session_id,
                                            device_id=principal.device_id,
                                            amr=tuple(session.amr or sessions.PASSWORD_AMR)),
                    body=body, caller=caller)


def approve_with_device(ctx: AppContext, *, body: ScreenSignIn, caller: Caller) -> ScreenApproved:
    """Single sign-on: the browser's device proves it holds its key, and its live session approves (401
    login_required when it has none: the page asks the person to sign in)."""
    from oidc.authorization.finish import LoginRequired

    proven = device_proof.prove(ctx, client_cert=body.client_cert, challenge=body.challenge,
                                signature=body.signature, purpose=APPROVE_PURPOSE)
    if proven.session is None:
        raise LoginRequired("This device has no live citylogin session: sign in on it.")
    return _approve(ctx, approver=_Approver(user_uuid=proven.device.user_uuid, session_id=proven.session.session_id,
                                            device_id=proven.device.device_id,
                                            amr=tuple(proven.session.amr or sessions.PASSWORD_AMR)),
                    body=body, caller=caller)


@dataclass(frozen=True)
class _Screen:
    """The screen being approved: its request, and the device and session it becomes."""

    pending: device_flow.PendingScreen
    device_id: str   # a device of its own: never one of the person's registered ones
    session_id: str  # its session, which the approval names for the screen's poll
    device_name: str

    @property
    def device_class(self) -> str:
        return self.pending.app.oidc().device_class


def _approve(ctx: AppContext, *, approver: _Approver, body: ScreenApproval, caller: Caller) -> ScreenApproved:
    pending = device_flow.presented(ctx, user_code=body.user_code, ip=caller.ip)
    screen = _Screen(pending=pending, device_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()),
                     device_name=body.device_name)
    user = users.get_user(ctx, user_uuid=approver.user_uuid)
    if user is None or user.deleting:
        raise sessions.AccountDeleted()
    limit = ctx.settings.max_concurrent_devices if user.max_concurrent_devices is None \
        else user.max_concurrent_devices
    # The sign-in is told to the person with its "Wasn't you?" link, both written with the seat.
    link = not_me.new_link(ctx, user_uuid=user.user_uuid, device_id=screen.device_id, session_id=screen.session_id)
    notice = _new_sign_in_notice(ctx.notifier, user=user, screen=screen, link=link, caller=caller, at=ctx.now())
    taken = _seat(ctx, approver=approver, screen=screen, limit=limit, answer=in_use.Answer(
        force=body.force, displace=tuple(body.displace)), caller=caller, told=[link.write, notice.write])
    ctx.notifier.send_queued(notice)
    app = pending.app
    if app.oidc().consent:  # the approval page showed what the app asks for: the person allowed it
        consents.remember(ctx, user_uuid=approver.user_uuid, client_id=app.client_id,
                          scopes=frozenset(pending.scopes()))
    audit(AuditEvent.SCREEN_APPROVED, user_uuid=approver.user_uuid, device_id=screen.device_id,
          session_id=screen.session_id, client_id=app.client_id, by_device=approver.device_id, ip=caller.ip)
    for gone in taken.evicted:
        audit(AuditEvent.SESSION_EVICTED, user_uuid=approver.user_uuid, device_id=gone.device_id,
              session_id=gone.session_id, by_device=screen.device_id, reason="displaced")
    _notify_displaced(ctx.notifier, user=user, screen=screen, opened=taken, caller=caller, at=ctx.now())
    return ScreenApproved(status="approved", session_id=screen.session_id, device_id=screen.device_id,
                          device_name=screen.device_name, device_class=screen.device_class, client_name=app.name,
                          evicted=[{"device_id": e.device_id, "device_name": e.device_name} for e in taken.evicted])


def _seat(ctx: AppContext, *, approver: _Approver, screen: _Screen, limit: int, answer: in_use.Answer,
          caller: Caller, told: list[GuardedWrite]) -> OpenedSession:
    """The concurrency decision of a login (SPEC §5) for the screen: read the account's live devices,
    decide whom it displaces under the policy, and write it all (with `told`: the mail of the sign-in and
    its link) in one transaction that holds only if nobody changed the presence meanwhile; else again,
    from a fresh read. The session lives until the code expires, unless the screen redeems it first."""
    settings, moved = ctx.settings, None
    for _ in range(OPEN_ATTEMPTS):
        seats = sessions.read_seats(ctx, user_uuid=approver.user_uuid, device_id=screen.device_id, after=moved)
        try:
            with in_use.choices_checked(ctx, seats):
                evicted = concurrency_policy.choose_evictions(
                    policy=settings.concurrency_policy, limit=limit, order=settings.evict, others=seats.others,
                    force=answer.force, device_class=screen.device_class, class_limits=settings.class_limits,
                    displace=answer.displace)
        except concurrency_policy.ConfirmationRequired as required:
            raise in_use.InUse(required, action=in_use.Action(
                screen=screen.device_name, device_class=screen.device_class, client_name=screen.pending.app.name),
                current_device=approver.device_id) from None
        # The approving session must still be live when the seat is taken, unless this very transaction
        # ends it (displaced by the screen, or counted idle by the presence): one write per item.
        ending = {e.session_id for e in evicted} | {e.session_id for e in seats.presence.entries.values()
                                                     if e not in seats.live}
        taken = sessions.take_seat(ctx, seats, evicted=evicted, device_name=screen.device_name,
                                   device_class=screen.device_class, ip=caller.ip, user_agent=None,
                                   extra_writes=[*_writes(ctx, approver=approver, screen=screen, now=seats.now,
                                                          approver_ends=approver.session_id in ending), *told],
                                   amr=approver.amr, session_id=screen.session_id,
                                   screen_of=screen.pending.app.client_id,
                                   app_of=(screen.pending.app.client_id, screen.pending.app.name),
                                   redeem_by=screen.pending.code.expires_epoch)
        if isinstance(taken, OpenedSession):
            return taken
        moved = taken
    raise ServiceUnavailable("Too many simultaneous logins for this account; try again.")


def _writes(ctx: AppContext, *, approver: _Approver, screen: _Screen, now: int,
            approver_ends: bool) -> list[GuardedWrite]:
    """What the seat's transaction holds beside the presence: the account not locked, the request still
    pending (marked approved, naming the screen's session) and its user code used up, the app still
    registered, and the approving session live unless the transaction ends it."""
    decided, used = device_flow.store(ctx).decide_items(screen.pending.code, now=now, approval={
        "user_uuid": approver.user_uuid, "session_id": screen.session_id, "device_id": screen.device_id,
        "auth_time": now, "amr": list(approver.amr), "session_expires_epoch": now + ctx.settings.session_max_lifetime,
        "approved_ms": ctx.epoch_ms(), "device_name": screen.device_name})
    writes = [users.not_locked_write(ctx, user_uuid=approver.user_uuid),
              GuardedWrite(item=decided, refusal=device_flow.InvalidUserCode),
              GuardedWrite(item=used, refusal=device_flow.InvalidUserCode),
              apps.still_registered(ctx, client_id=screen.pending.app.client_id, refusal=device_flow.InvalidUserCode)]
    if not approver_ends:
        writes.append(sessions.live_check_of(ctx, session_id=approver.session_id, user_uuid=approver.user_uuid,
                                             device_id=approver.device_id))
    return writes


def _new_sign_in_notice(notifier: Notifier, *, user: UserRecord, screen: _Screen, link: not_me.NotMeLink,
                        caller: Caller, at: datetime) -> Queued:
    """The screen's sign-in (`at`), in the account's language, as a new device's: which screen, of what
    class, for which app, when and from where it was approved, with its "Wasn't you?" link (a phished code
    leaves a trace the person hears of)."""
    return notifier.queued(localized_message(
        "new_sign_in", texts="new_screen_sign_in", user_uuid=user.user_uuid, email=user.email, locale=user.locale,
        device=screen.device_name, app=screen.pending.app.name,
        facts=device_facts(user.locale, device_name=screen.device_name, device_class=screen.device_class,
                           at=at, ip=caller.ip),
        link=link.url))


def _notify_displaced(notifier: Notifier, *, user: UserRecord, screen: _Screen, opened: OpenedSession,
                      caller: Caller, at: datetime) -> None:
    """Each device the screen displaced is told to the person as a login's are, in the account's language."""
    if not opened.evicted:
        return
    facts = device_facts(user.locale, device_name=screen.device_name, device_class=screen.device_class,
                         at=at, ip=caller.ip)
    for evicted in opened.evicted:
        notifier.notify(localized_message(
            "forced_logout", texts="forced_logout_displaced", user_uuid=user.user_uuid, email=user.email,
            locale=user.locale, evicted=evicted.device_name,
            evicted_class=device_class_name(evicted.device_class, user.locale), device=screen.device_name,
            facts=facts))

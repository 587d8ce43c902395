"""Passkeys (SPEC §13) with py_webauthn: their options, registration, list, rename and removal,
and the check of an assertion that stands in for the password. A passkey never stands in for the
device: the login still asks the device key for its proof. No Flask here.

Challenges are single-use items of the one_time_tokens table, keyed by their digest; an assertion
is accepted by one transaction that uses its challenge up and moves the credential's signature
counter, so a replayed or raced assertion is refused."""
from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

import webauthn
from botocore.exceptions import ClientError
from webauthn.helpers import options_to_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, AuthenticatorTransport,
                                      PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)

from accounts import user_service as users
from accounts.models import PasskeyAdded, PasskeyAssertion, PasskeyCredential, PasskeyRecord, PasskeyView, UserRecord
from accounts.passkey_store import COUNT_ID, PasskeyStore
from common.errors import Conflict, ErrorCode, NotFound, Unauthorized
from common.timefmt import iso
from common.crypto.tokens import token_digest
from common.database import dynamo
from common.database.dynamo import TableNames
from common.database.batch_read import KeyRead
from common.database.guarded_write import GuardedWrite, write_all
from common.database.one_time_tokens import OneTimeTokenStore
from common.mail.notifier import Notifier, localized_message, mail_time
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

if TYPE_CHECKING:  # the stubs package is a test (type-check) dependency only
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

CHALLENGE_TTL = 300  # seconds to answer the browser's prompt
MAX_PASSKEYS = 20  # per account
_CREATE, _GET = "passkey_create", "passkey_get"  # the challenges' kinds (and digest purposes)
# Names of assertion_reads' items in the caller's read_together result.
PASSKEY, PASSKEY_CHALLENGE = "passkeys.credential", "passkeys.challenge"
CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{16,1024}")


class PasskeyNotFound(NotFound):
    code, detail = ErrorCode.PASSKEY_NOT_FOUND, "No such passkey."


class PasskeyExists(Conflict):
    code, detail = ErrorCode.PASSKEY_EXISTS, "This passkey is already registered to the account."


class PasskeyLimitReached(Conflict):
    code, detail = ErrorCode.PASSKEY_LIMIT_REACHED, "This account already has the maximum number of passkeys."


class PasskeyCounterRegressed(Unauthorized):
    code, detail = (ErrorCode.PASSKEY_COUNTER_REGRESSED,
                    "This passkey's signature counter went backwards: it may have been copied. Sign in with "
                    "the password and remove the passkey.")


class RegistrationRefused(Unauthorized):
    """An attestation that does not verify (another origin or RP id, an old or foreign challenge)."""

    code, detail = ErrorCode.INVALID_CREDENTIALS, "The passkey could not be verified."


def _store(ctx: AppContext) -> PasskeyStore:
    return PasskeyStore(ctx.dynamodb, ctx.tables.passkeys)


def _tokens(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def relying_party(ctx: AppContext) -> tuple[str, list[str]]:
    """The relying-party id (the public URL's host) and the origins assertions may come from."""
    parts = urlsplit(ctx.public_url())
    return parts.hostname or "", [f"{parts.scheme}://{parts.netloc}", *ctx.settings.passkey_origins]


def user_handle(user_uuid: str) -> bytes:
    """The WebAuthn user.id of an account: its uuid's 16 bytes (no personal data)."""
    return uuid.UUID(user_uuid).bytes


def user_of_handle(handle: str | None) -> str | None:
    """The account uuid a base64url userHandle names; None if it names none."""
    raw = _unb64(handle or "")
    return str(uuid.UUID(bytes=raw)) if raw is not None and len(raw) == 16 else None


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _client_challenge(client_data_json: str) -> str | None:
    """The challenge an authenticator signed over, from its clientDataJSON; None if unreadable."""
    raw = _unb64(client_data_json)
    try:
        challenge = json.loads(raw) if raw else None
    except ValueError:
        return None
    challenge = challenge.get("challenge") if isinstance(challenge, dict) else None
    return challenge if isinstance(challenge, str) and 0 < len(challenge) <= 128 else None


def _new_challenge(ctx: AppContext, *, kind: str, user_uuid: str | None = None,
                   counter: TransactWriteItemTypeDef | None = None) -> bytes | None:
    """32 random bytes, stored as the digest of their base64url form (what clientDataJSON carries),
    in one transaction with `counter` (a rate-limit entry): None if the counter refused."""
    challenge = secrets.token_bytes(32)
    put = _tokens(ctx).create_item(digest=token_digest(_b64(challenge), purpose=kind), kind=kind,
                                   expires_epoch=ctx.epoch() + CHALLENGE_TTL,
                                   data={"user_uuid": user_uuid} if user_uuid else None)
    try:
        ctx.dynamodb.transact_write_items(TransactItems=[*([counter] if counter else []), {"Put": put["Put"]}])
    except ClientError as exc:
        if counter and dynamo.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return None
        raise
    return challenge


def _descriptors(records: list[PasskeyRecord]) -> list[PublicKeyCredentialDescriptor]:
    known = {t.value for t in AuthenticatorTransport}
    return [PublicKeyCredentialDescriptor(id=_unb64(r.credential_id) or b"", transports=[
        AuthenticatorTransport(t) for t in r.transports if t in known] or None) for r in records]


# --- options ---------------------------------------------------------------------------------

def request_options(ctx: AppContext, *, username: str | None, counter: TransactWriteItemTypeDef) -> str | None:
    """PublicKeyCredentialRequestOptions as JSON, with a new single-use challenge stored in one
    transaction with `counter` (the caller's rate limit; None if it refused): for `username` its
    passkeys, else none listed (a discoverable credential answers)."""
    user_uuid = users.find_uuid_by_username(ctx, username=username) if username else None
    listed = _store(ctx).list(user_uuid) if user_uuid else []
    challenge = _new_challenge(ctx, kind=_GET, counter=counter)
    if challenge is None:
        return None
    rp_id, _ = relying_party(ctx)
    options = webauthn.generate_authentication_options(
        rp_id=rp_id, challenge=challenge, timeout=CHALLENGE_TTL * 1000, allow_credentials=_descriptors(listed),
        user_verification=UserVerificationRequirement.REQUIRED)
    return options_to_json(options)


def creation_options(ctx: AppContext, *, user: UserRecord) -> str:
    """PublicKeyCredentialCreationOptions as JSON for a new passkey of `user` (re-authenticated by
    the caller), excluding the passkeys it has; its challenge is usable by this user alone."""
    rp_id, _ = relying_party(ctx)
    options = webauthn.generate_registration_options(
        rp_id=rp_id, rp_name="citylogin", user_id=user_handle(user.user_uuid), user_name=user.username,
        user_display_name=user.username, timeout=CHALLENGE_TTL * 1000,
        challenge=_new_challenge(ctx, kind=_CREATE, user_uuid=user.user_uuid) or b"",
        exclude_credentials=_descriptors(_store(ctx).list(user.user_uuid)),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED))
    return options_to_json(options)


# --- the passkeys of an account ----------------------------------------------------------------

def _view(record: PasskeyRecord) -> PasskeyView:
    return PasskeyView(id=record.credential_id, name=record.name, created_at=record.created_at,
                       last_used_at=record.last_used_at, backed_up=record.backed_up)


def list_passkeys(ctx: AppContext, *, user_uuid: str) -> list[PasskeyView]:
    return [_view(r) for r in _store(ctx).list(user_uuid)]


def passkey_count_read(tables: TableNames, *, user_uuid: str) -> KeyRead[int]:
    """How many passkeys the user has, for a caller's batch read: the count item that every addition and
    removal moves in its own transaction (0 lists none without a Query)."""
    return KeyRead(tables.passkeys, PasskeyStore.key(user_uuid, COUNT_ID), PasskeyStore.count_from_item)


def passkey_kept_write(ctx: AppContext, *, user_uuid: str) -> GuardedWrite:
    """A check, for another domain's transaction (an identity's unlink), that the user still has a passkey
    when it commits; refused with 409 last_way_in."""
    return GuardedWrite(item=_store(ctx).count_check_item(user_uuid), refusal=users.LastWayIn)


def add_passkey(ctx: AppContext, *, user: UserRecord, credential: PasskeyCredential, name: str | None,
                caller_live: GuardedWrite) -> PasskeyAdded:
    """Verify a new credential against a creation challenge issued to `user` (used up here, whatever
    the outcome) and store it, under MAX_PASSKEYS, unless the account's deletion has begun or the
    caller's session ended meanwhile (`caller_live`: a password reset ends every session, then
    removes every passkey, so none added by an ended session outlives it)."""
    challenge = _client_challenge(credential.response.clientDataJSON) or ""
    pending = challenge and _tokens(ctx).consume(digest=token_digest(challenge, purpose=_CREATE), kind=_CREATE,
                                                 now=ctx.epoch())
    if not pending or pending.get("user_uuid") != user.user_uuid:
        raise RegistrationRefused()
    rp_id, origins = relying_party(ctx)
    try:
        verified = webauthn.verify_registration_response(
            credential=credential.model_dump(exclude_none=True), expected_challenge=_unb64(challenge) or b"",
            expected_rp_id=rp_id, expected_origin=origins, require_user_verification=True)
    except WebAuthnException:
        raise RegistrationRefused() from None
    record = PasskeyRecord(
        user_uuid=user.user_uuid, credential_id=_b64(verified.credential_id),
        public_key=verified.credential_public_key, sign_count=verified.sign_count,
        name=name or _default_name(credential), created_at=iso(ctx.now()), last_used_at=None,
        backed_up=verified.credential_backed_up, transports=tuple(credential.response.transports))
    store = _store(ctx)
    write_all(ctx.dynamodb, [users.not_deleting_write(ctx, user_uuid=user.user_uuid), caller_live,
                             GuardedWrite(store.put_item(record), PasskeyExists),
                             GuardedWrite(store.count_item(user.user_uuid, delta=1, limit=MAX_PASSKEYS),
                                          PasskeyLimitReached)])
    audit(AuditEvent.PASSKEY_ADDED, user_uuid=user.user_uuid, backed_up=record.backed_up)
    ctx.notifier.notify(localized_message("passkey_added", user_uuid=user.user_uuid, email=user.email,
                                          locale=user.locale, passkey=record.name,
                                          time=mail_time(ctx.now(), user.locale)))
    return PasskeyAdded(id=record.credential_id, name=record.name)


def _default_name(credential: PasskeyCredential) -> str:
    return "Passkey" if credential.authenticatorAttachment != "cross-platform" else "Security key"


def _known_form(credential_id: str) -> str:
    """`credential_id` (from a URL) if it can be a stored id; else 404 passkey_not_found."""
    if not CREDENTIAL_ID.fullmatch(credential_id):
        raise PasskeyNotFound()
    return credential_id


def rename_passkey(ctx: AppContext, *, user_uuid: str, credential_id: str, name: str) -> PasskeyAdded:
    if not _store(ctx).rename(user_uuid, _known_form(credential_id), name):
        raise PasskeyNotFound()
    return PasskeyAdded(id=credential_id, name=name)


def removal_keeps(user: UserRecord, *, passkey_count: int) -> str:
    """The way in the account keeps once one of its passkeys is gone (SPEC §16): "password", "identity" (a
    linked one) or "passkey" (another one), the first it has as read; 409 last_way_in with none."""
    keeps = "password" if user.has_password else "identity" if user.identities else \
        "passkey" if passkey_count > 1 else None
    if keeps is None:
        raise users.LastWayIn()
    return keeps


def remove_passkey(ctx: AppContext, *, user_uuid: str, credential_id: str, keeps: str) -> None:
    """Remove one of the user's passkeys (re-authenticated by the caller): it signs nothing in again. The
    transaction holds to `keeps` (removal_keeps): an unlink of the last identity, or the removal of the other
    last passkey, racing with it cannot both commit (409 last_way_in for the later)."""
    store, credential_id = _store(ctx), _known_form(credential_id)
    count = store.count_taken_item(user_uuid, keep=1) if keeps == "passkey" else \
        store.count_item(user_uuid, delta=-1, limit=MAX_PASSKEYS)
    writes = [GuardedWrite(store.delete_item(user_uuid, credential_id), PasskeyNotFound),
              GuardedWrite(count, users.LastWayIn if keeps == "passkey" else PasskeyNotFound)]
    if keeps != "passkey":
        writes.append(users.way_in_kept_write(ctx, user_uuid=user_uuid, keeps=keeps))
    write_all(ctx.dynamodb, writes)
    audit(AuditEvent.PASSKEY_REMOVED, user_uuid=user_uuid)


def delete_all_passkeys(ctx: AppContext, *, user_uuid: str) -> int:
    """Account deletion and password reset: every passkey of the account goes; returns how many."""
    return _store(ctx).delete_all_of_user(user_uuid)


# --- an assertion in place of the password -----------------------------------------------------

def assertion_reads(tables: TableNames, *, user_uuid: str, assertion: PasskeyAssertion,
                    now: int) -> dict[str, KeyRead[Any]]:
    """What accept_assertion needs, for the caller's batch read: the credential as a passkey of
    `user_uuid` (the account the caller expects) and the challenge it answers."""
    challenge = _client_challenge(assertion.response.clientDataJSON) or ""
    return {PASSKEY: KeyRead(tables.passkeys, PasskeyStore.key(user_uuid, assertion.id), PasskeyStore.from_item),
            PASSKEY_CHALLENGE: KeyRead(tables.one_time_tokens,
                                       OneTimeTokenStore.key(token_digest(challenge, purpose=_GET)),
                                       lambda item: _challenge_usable(item, now=now))}


def _challenge_usable(item: dict[str, Any] | None, *, now: int) -> bool:
    return item is not None and item["kind"]["S"] == _GET and int(item["expires_epoch"]["N"]) > now


@dataclass(frozen=True)
class AcceptedAssertion:
    """An assertion that verified, and the transaction entries that spend it."""

    record: PasskeyRecord
    spending: list[GuardedWrite]


def check_assertion(ctx: AppContext, *, user: UserRecord, assertion: PasskeyAssertion,
                    facts: Mapping[str, Any], refusal: type[Exception]) -> AcceptedAssertion | None:
    """The verified assertion of one of `user`'s passkeys to a live request challenge, with the
    entries that use the challenge up and move the counter (refused by `refusal` if raced); None if
    it does not verify. A counter that went backwards on a credential that is not backed up raises
    PasskeyCounterRegressed and tells the person (a cloned authenticator, WebAuthn §6.1.1)."""
    record = facts[PASSKEY]
    if record is None or record.user_uuid != user.user_uuid:  # read for another expected account
        record = _store(ctx).get(user.user_uuid, assertion.id)
    handle = assertion.response.userHandle
    if record is None or not facts[PASSKEY_CHALLENGE] or (handle and user_of_handle(handle) != user.user_uuid):
        return None
    challenge = _client_challenge(assertion.response.clientDataJSON) or ""
    rp_id, origins = relying_party(ctx)
    try:  # the counter is checked below, where a backed-up (synced) credential is told apart
        verified = webauthn.verify_authentication_response(
            credential=assertion.model_dump(exclude_none=True), expected_challenge=_unb64(challenge) or b"",
            expected_rp_id=rp_id, expected_origin=origins, credential_public_key=record.public_key,
            credential_current_sign_count=0, require_user_verification=True)
    except WebAuthnException:
        return None
    new_count = verified.new_sign_count
    if (new_count or record.sign_count) and new_count <= record.sign_count and not verified.credential_backed_up:
        _report_counter(ctx.notifier, at=ctx.now(), user=user, record=record)
        raise PasskeyCounterRegressed()
    tokens = _tokens(ctx)
    return AcceptedAssertion(record=record, spending=[
        GuardedWrite(tokens.consume_item(digest=token_digest(challenge, purpose=_GET), kind=_GET, now=ctx.epoch()),
                     refusal),
        GuardedWrite(_store(ctx).use_item(record, sign_count=max(new_count, record.sign_count),
                                          backed_up=verified.credential_backed_up, used_at=iso(ctx.now())),
                     refusal)])


def spend(dynamodb: DynamoDBClient, accepted: AcceptedAssertion) -> None:
    """Use the assertion up: its challenge and its counter, in one transaction."""
    write_all(dynamodb, accepted.spending)


def _report_counter(notifier: Notifier, *, at: datetime, user: UserRecord, record: PasskeyRecord) -> None:
    audit(AuditEvent.PASSKEY_COUNTER_REGRESSED, user_uuid=user.user_uuid, stored_count=record.sign_count)
    notifier.notify(localized_message("passkey_counter", user_uuid=user.user_uuid, email=user.email,
                                      locale=user.locale, passkey=record.name, time=mail_time(at, user.locale)))

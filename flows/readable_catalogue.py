"""What the readable copy of a person's data export (flows/readable_export.py) makes of each attribute the
machine-readable document holds, section by section: how its value reads (a date, yes or no, a device's
name in place of its id, a word for a stored code) and its label and phrase in the catalogues
(export.field.<name> and export.field.<name>.about, or export.field.<section>.<name> where a section means
something else by it). An attribute this module does not name still shows, plainly (readable_export.py)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(str, Enum):
    """How a value reads."""

    TEXT = "text"            # as stored (a name, an address, a user agent)
    TIME = "time"            # ISO 8601 or epoch seconds: a date and time in the person's time zone
    TIME_MS = "time_ms"      # epoch milliseconds: the same
    YES_NO = "yes_no"
    NUMBER = "number"
    LIMIT = "limit"          # a device limit: a number, 0 for none, "default" (or absent) for the server's
    WORD = "word"            # a stored code, in words (Field.words: its key with {} for the value)
    WORDS = "words"          # a list (or a space-separated string: an OAuth scope) of codes, in words
    DEVICE = "device"        # a device id: that device's name
    DEVICES = "devices"      # a list of {device_id, device_name}: the names
    SESSION = "session"      # a session id: which device signed in, and when
    APP = "app"              # a client_id: the app's name
    APPS = "apps"            # a session's app_names ("<client_id> <name>" each): the names
    CLAIM = "claim"          # a claims key: the name it reserves
    COUNTER = "counter"      # a rate_limits key: what the counter counts
    ENTRIES = "entries"      # presence's map of devices signed in: one part each
    OPERATOR = "operator"    # who acted: a name (the command line's), or "user:<id>" / "app:<client_id>" in words
    MAIL = "mail"            # a mail's event: its subject (mail.<event>.subject), else "a notice"
    CLASS_CHANGES = "class_changes"  # a session's [{at, device_class}]: each kind of device and from when
    IDENTITIES = "identities"  # the users item's map of linked identities: provider, e-mail and when, each
    TECHNICAL = "technical"  # a key, certificate, fingerprint or id: named, its value left to the JSON file
    INTERNAL = "internal"    # how the item is stored (its key's parts, a version): not shown at all


@dataclass(frozen=True)
class Field:
    kind: Kind
    words: str = ""          # WORD/WORDS: the key of a value's words, "{}" standing for the value
    own_label: bool = False  # the label is export.field.<section>.<name>, not export.field.<name>


TEXT, TIME, YES_NO, NUMBER = Field(Kind.TEXT), Field(Kind.TIME), Field(Kind.YES_NO), Field(Kind.NUMBER)
TECHNICAL, INTERNAL = Field(Kind.TECHNICAL), Field(Kind.INTERNAL)
DEVICE_ID = Field(Kind.TECHNICAL, own_label=True)  # where the item is the device's: its id, not its name
DEVICE = Field(Kind.DEVICE)
METHODS = Field(Kind.WORDS, "export.value.amr.{}")
CLASS = Field(Kind.WORD, "export.value.device_class.{}")
SCOPE = Field(Kind.WORDS, "export.value.scope.{}")

# Every section's attributes. user_uuid is the account's own id, which the account section shows once.
FIELDS: dict[str, dict[str, Field]] = {
    "users": {
        "username": TEXT, "email": TEXT, "email_verified": YES_NO, "email_unclaimed": YES_NO,
        "locale": Field(Kind.WORD, "export.value.locale.{}"), "created_at": TIME, "recovery_codes_left": NUMBER,
        "locked": YES_NO, "max_concurrent_devices": Field(Kind.LIMIT),
        "roles": Field(Kind.WORDS, "export.value.role.{}"), "identities": Field(Kind.IDENTITIES),
        "user_uuid": Field(Kind.TEXT, own_label=True), "recovery_generation": TECHNICAL,
        "reset_generation": TECHNICAL, "email_link_generation": TECHNICAL},
    "claims": {"claim": Field(Kind.CLAIM), "provider": Field(Kind.TEXT, own_label=True),
               "issuer": Field(Kind.TEXT, own_label=True), "sub": Field(Kind.TEXT, own_label=True),
               "user_uuid": INTERNAL},
    "devices": {
        "device_name": TEXT, "device_class": CLASS, "key_type": TEXT,
        "status": Field(Kind.WORD, "export.value.device_status.{}"), "is_primary": YES_NO,
        "registered_at": TIME, "last_login_at": TIME, "cert_expires_at": TIME, "revoked_at": TIME,
        "registered": NUMBER, "reason": Field(Kind.WORD, "export.value.crl_reason.{}", own_label=True),
        "revoked_device_id": DEVICE, "expires_epoch": Field(Kind.TIME, own_label=True), "expires_ttl": TIME,
        "cert_pem": TECHNICAL, "fingerprint": TECHNICAL, "serial": TECHNICAL, "device_id": DEVICE_ID,
        "user_uuid": INTERNAL, "revoked_user_uuid": INTERNAL},
    "sessions": {
        "device_name": TEXT, "device_class": CLASS, "created_at": TIME, "login_epoch": TIME,
        "last_seen_epoch": TIME, "ends_at": TIME, "expires_epoch": Field(Kind.TIME, own_label=True),
        "expires_ttl": TIME, "rotated_epoch": TIME,
        "status": Field(Kind.WORD, "export.value.session_status.{}"), "revoked_at": TIME,
        "revoked_reason": Field(Kind.WORD, "web.sessions.ended_{}"), "by_device": DEVICE, "ip": TEXT,
        "user_agent": TEXT, "amr": METHODS, "app_names": Field(Kind.APPS), "login_seq": NUMBER,
        "admin_action": Field(Kind.WORD, "export.value.admin_action.{}"), "by_app_name": TEXT,
        "screen_of": Field(Kind.APP, own_label=True), "reauth_epoch": TIME, "class_changes": Field(Kind.CLASS_CHANGES),
        "device_id": DEVICE_ID, "session_id": TECHNICAL, "refresh_gen": TECHNICAL, "refresh_kid": TECHNICAL,
        "jkt": TECHNICAL, "live_shard": INTERNAL, "live_screen_of": INTERNAL, "unredeemed": INTERNAL,
        "screen_name": INTERNAL,  # screen_of names the app
        "locked": INTERNAL, "by_app": INTERNAL, "user_uuid": INTERNAL},  # admin_action and by_app_name say them
    "presence": {"entries": Field(Kind.ENTRIES), "login_seq": Field(Kind.NUMBER, own_label=True),
                 "version": INTERNAL, "user_uuid": INTERNAL},
    "presence_devices": {  # each of presence's entries
        "device_name": TEXT, "device_class": CLASS, "login_epoch": TIME, "last_seen_epoch": TIME,
        "expires_epoch": Field(Kind.TIME, own_label=True), "ip": TEXT, "login_seq": NUMBER,
        "device_id": DEVICE_ID, "session_id": TECHNICAL, "user_agent": TEXT, "app_names": Field(Kind.APPS)},
    "login_history": {
        "at": TIME, "result": Field(Kind.WORD, "web.history.result_{}"),
        "action": Field(Kind.WORD, "web.history.action_{}"), "device_id": DEVICE, "ip": TEXT, "user_agent": TEXT,
        "evicted": Field(Kind.DEVICES), "continued": YES_NO, "expires_ttl": TIME, "items": NUMBER,
        "operator": Field(Kind.OPERATOR), "operator_username": TEXT,
        "operator_role": Field(Kind.WORD, "export.value.role.{}"),
        "reason": Field(Kind.TEXT, own_label=True), "operator_client": TECHNICAL, "sessions_ended": NUMBER,
        "limit": Field(Kind.LIMIT, own_label=True), "sent": Field(Kind.YES_NO, own_label=True),
        "role": Field(Kind.WORD, "export.value.role.{}", own_label=True), "granted": Field(Kind.YES_NO, own_label=True),
        "mail_event": Field(Kind.MAIL), "mail_id": TECHNICAL, "operator_uuid": TECHNICAL,
        "operator_session": TECHNICAL, "event_key": INTERNAL, "user_uuid": INTERNAL},
    "one_time_tokens": {
        "kind": Field(Kind.WORD, "export.value.token_kind.{}"), "email": TEXT, "device_id": DEVICE,
        "redeemed_session": Field(Kind.SESSION), "client_id": Field(Kind.APP), "mails": NUMBER,
        "expires_epoch": Field(Kind.TIME, own_label=True), "expires_ttl": TIME,
        # a screen's sign-in (oidc_device), its "Wasn't you?" link, an app's logout waiting (oidc_logout)
        "device_name": TEXT, "status": Field(Kind.WORD, "export.value.screen_status.{}"), "scope": SCOPE,
        "approved_ms": Field(Kind.TIME_MS, own_label=True), "auth_time": TIME, "amr": METHODS,
        "session_id": Field(Kind.SESSION, own_label=True), "screen_session": Field(Kind.SESSION, own_label=True),
        "session_expires_epoch": Field(Kind.TIME, own_label=True), "redirect_to": Field(Kind.TEXT, own_label=True),
        "generation": TECHNICAL, "reset_generation": TECHNICAL, "jkt": TECHNICAL,
        "tries": NUMBER, "code_digest": TECHNICAL, "address_digest": TECHNICAL,  # a first device's code (enrol_code)
        "poll_interval": INTERNAL, "last_poll_ms": INTERNAL, "user_uuid": INTERNAL},  # the screen's polling
    "pairing_tokens": {
        "created_at": TIME, "created_by_device": DEVICE, "status": Field(Kind.WORD, "export.value.pairing_status.{}"),
        "used_at": TIME, "used_by_device": DEVICE, "expires_epoch": Field(Kind.TIME, own_label=True),
        "expires_ttl": TIME, "user_uuid": INTERNAL},
    "rate_limits": {
        "limit_key": Field(Kind.COUNTER), "uses": NUMBER, "failures": Field(Kind.TIME), "lockouts": NUMBER,
        "locked_until": TIME, "expires_ttl": TIME, "user_uuid": INTERNAL},
    "passkeys": {
        "name": Field(Kind.TEXT, own_label=True), "created_at": TIME, "last_used_at": TIME, "backed_up": YES_NO,
        "sign_count": NUMBER, "transports": Field(Kind.WORDS, "export.value.transport.{}"), "passkeys": NUMBER,
        "public_key": TECHNICAL, "credential_id": TECHNICAL, "user_uuid": INTERNAL},
    "oidc_grants": {
        "client_id": Field(Kind.APP), "session_id": Field(Kind.SESSION, own_label=True), "device_id": DEVICE,
        "scope": SCOPE, "amr": METHODS, "auth_time": TIME,
        "granted_epoch": TIME, "expires_epoch": Field(Kind.TIME, own_label=True), "expires_ttl": TIME,
        "revoked_at": TIME, "revoked_reason": Field(Kind.WORD, "web.sessions.ended_{}"),
        "grant_id": TECHNICAL, "refresh_gen": TECHNICAL, "jkt": TECHNICAL, "user_uuid": INTERNAL},
    "oidc_consents": {
        "client_id": Field(Kind.APP), "scopes": SCOPE, "granted_epoch": TIME,
        "given_ms": TECHNICAL, "user_uuid": INTERNAL},
    "mail_outbox": {
        "texts": Field(Kind.WORD, "mail.{}.subject"), "state": Field(Kind.WORD, "export.value.mail_state.{}"),
        "locale": Field(Kind.WORD, "export.value.locale.{}"), "created_at": TIME, "since": TIME, "due_at": TIME,
        "attempts": NUMBER, "sent_at": TIME, "gave_up_at": TIME, "last_error": TEXT, "expires_ttl": TIME,
        "mail_id": TECHNICAL, "event": INTERNAL, "queue": INTERNAL, "user_uuid": INTERNAL},
}

# Which kind of item an item is, where a section holds more than one (export.<section>.item.<kind>)
MARKERS = {"#registered": "registered", "#crl": "certificate", "#count": "count"}

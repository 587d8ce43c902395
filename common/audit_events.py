"""The names of the audit stream's events (README "Audit stream" lists each; a test holds them
equal). An event not in this Enum cannot be written."""
from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    LOGIN_HISTORY_UNWRITTEN = "login_history_unwritten"
    LOCKOUT = "lockout"
    SESSION_EVICTED = "session_evicted"
    SESSION_REVOKED = "session_revoked"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    PAIRING_TOKEN_CREATED = "pairing_token_created"
    PAIRING_TOKEN_REDEEMED = "pairing_token_redeemed"
    DEVICE_UNBOUND = "device_unbound"
    DEVICE_RECOVERED = "device_recovered"
    CERTIFICATE_RENEWED = "certificate_renewed"
    NOT_ME = "not_me"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET_REQUESTED = "password_reset_requested"
    PASSWORD_RESET = "password_reset"
    RECOVERY_CODES_REPLACED = "recovery_codes_replaced"
    PASSKEY_ADDED = "passkey_added"
    PASSKEY_REMOVED = "passkey_removed"
    PASSKEY_COUNTER_REGRESSED = "passkey_counter_regressed"
    ACCOUNT_DELETION_STARTED = "account_deletion_started"
    ACCOUNT_DELETED = "account_deleted"
    ACCOUNT_LOCKED = "account_locked"
    ACCOUNT_UNLOCKED = "account_unlocked"
    CONCURRENT_LIMIT_SET = "concurrent_limit_set"
    KEY_ROTATED = "key_rotated"
    KEY_RETIRED = "key_retired"
    APP_ADDED = "app_added"
    APP_SECRET_ROTATED = "app_secret_rotated"
    APP_REMOVED = "app_removed"

"""Session rules, the sessions domain's one door for the others: open with the concurrency invariant,
authenticate, refresh, end, list, watch. No Flask. Each concern lives in a module of its own, below
in the order they build on each other; this module only names what they offer."""
from __future__ import annotations

from sessions.context import history_store, liveness, session_store
from sessions.errors import (AccountDeleted, AccountLocked, InvalidRefreshToken, InvalidToken, RefreshTokenReused,
                             SessionNotFound, SessionRevoked, StreamsFull, TokenExpired, account_deleted_session)
from sessions.tokens import REFRESH_PURPOSE, token_pair
from sessions.listings import (audit_page, history_page, history_row, list_user_sessions, live_devices, mark_continued,
                               own_session, presence_read, read_presence, record_attempt, record_operator_action,
                               session_owner, session_page, session_status)
from sessions.endings import (ENDING_SHARDS, end_all_sessions, end_device_session, end_screens_of, ending_shard,
                              erase_user_records, logout, logout_all, revoke_own_session, revoke_session, sweep_ended)
from sessions.seats import (FEDERATED_AMR, PASSKEY_AMR, PASSWORD_AMR, RELABEL_ATTEMPTS, new_session, read_seats,
                            relabel_device, take_seat)
from sessions.authentication import (ANY_TOKENS, OWN_TOKENS, PROVIDER_TOKENS, SESSION_READ, Along, Vouched,
                                     authenticate, live_check_of, live_session, screen_redeemed, session_live_check,
                                     still_live, vouch)
from sessions.rotation import REFRESH_ATTEMPTS, rebinding, record_reauthentication, refresh
from sessions.streams import (HELD_STREAMS, event_feed, event_stream, events_after, grant_ending, session_watcher,
                              stream_caps)

__all__ = [
    "history_store", "liveness", "session_store",
    "AccountDeleted", "AccountLocked", "InvalidRefreshToken", "InvalidToken", "RefreshTokenReused", "SessionNotFound",
    "SessionRevoked", "StreamsFull", "TokenExpired", "account_deleted_session",
    "REFRESH_PURPOSE",
    "audit_page", "history_page", "history_row", "list_user_sessions", "live_devices", "mark_continued", "own_session",
    "presence_read", "read_presence", "record_attempt", "record_operator_action", "session_owner", "session_page",
    "session_status",
    "ENDING_SHARDS", "end_all_sessions", "end_device_session", "end_screens_of", "ending_shard", "erase_user_records",
    "logout", "logout_all", "revoke_own_session", "revoke_session", "sweep_ended",
    "FEDERATED_AMR", "PASSKEY_AMR", "PASSWORD_AMR", "RELABEL_ATTEMPTS", "read_seats", "relabel_device", "take_seat",
    "ANY_TOKENS", "OWN_TOKENS", "PROVIDER_TOKENS", "SESSION_READ", "Along", "Vouched", "authenticate",
    "live_check_of", "live_session", "screen_redeemed", "session_live_check", "still_live", "vouch",
    "REFRESH_ATTEMPTS", "rebinding", "record_reauthentication", "refresh",
    "HELD_STREAMS", "event_feed", "event_stream", "events_after", "grant_ending", "session_watcher", "stream_caps",
]

# bench/streams.py writes sessions straight into the tables with these (under these names, so that
# one copy of bench/ runs against older checkouts too).
_new_session, _token_pair = new_session, token_pair

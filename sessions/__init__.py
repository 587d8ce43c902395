"""The sessions domain: sessions and their presence record (the device limit's invariant), access and
refresh tokens, revocation, the login history and the live event streams. Served over HTTP by
session_manager/ (/session)."""

"""Accounts: the user's own profile and its recovery codes (later: passwords, lockout, e-mail)."""

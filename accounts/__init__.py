"""Accounts: users and their credentials (passwords, lockout), e-mail and recovery codes."""

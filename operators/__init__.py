"""Operators (/admin, `citylogin admin`): their roles, the account search and an account's page, the
support actions and the apps' administration, over the domains' services and the flows."""

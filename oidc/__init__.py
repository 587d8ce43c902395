"""The OpenID Provider (SPEC §14): apps sign people in through citylogin by OpenID Connect, on
Authlib's authorization server; the sign-in itself is citylogin's own, on the person's device."""

"""Requests citylogin makes to URLs that apps gave it (SPEC §14): bounded by one deadline and a size, to public
addresses only unless allowed otherwise, at most one per URL in flight."""

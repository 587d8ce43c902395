"""An authorization request's handle: 32 random characters, then the app's client_id, which complete() takes
as a hint for the app's grant on the session (oidc.authorization.handles). Whatever handle a browser sends, the hint
is read from the parsed handle, never more than the alphabet allows, and a handle of an earlier release (no
client_id) names no app."""
from __future__ import annotations

import secrets

from hypothesis import example, given
from hypothesis import strategies as st

from oidc.authorization.handles import RANDOM_CHARS
from oidc.authorization.handles import app_of as _app_of
from oidc.authorization.handles import new_handle as _request_id

CLIENT_IDS = st.from_regex(r"app_[0-9a-f]{20}", fullmatch=True)


@given(client_id=CLIENT_IDS)
def test_a_handle_names_its_app_after_its_random_part(client_id: str) -> None:
    handle = _request_id(client_id)
    assert len(handle) == RANDOM_CHARS + len(client_id) and _app_of(handle) == client_id


@given(handle=st.text(max_size=200))
@example(handle=secrets.token_urlsafe(24))          # an earlier release's handle: no app
@example(handle="x" * RANDOM_CHARS + "app_1\n")      # a newline after the app
@example(handle="x" * RANDOM_CHARS + "app.1")        # outside the handle's alphabet
@example(handle="x" * RANDOM_CHARS + "a" * 65)       # longer than a client_id may be
def test_any_handle_names_at_most_one_app_spelled_in_the_handles_alphabet(handle: str) -> None:
    named = _app_of(handle)
    if named is not None:
        assert handle == handle[:RANDOM_CHARS] + named and 1 <= len(named) <= 64
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in named)


def test_a_client_id_outside_the_alphabet_is_left_out_of_the_handle() -> None:
    assert len(_request_id("app/../x")) == RANDOM_CHARS

"""Sealed page cursors (sessions/cursors.py): only a cursor this server sealed, unedited, opens, and only for
the listing and the account it was sealed for. Hypothesis edits genuine cursors the ways a client could:
a character changed, cut, added or moved, a payload re-encoded around another position or kid, the MAC
of another cursor, another account or listing."""
from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.cursors import MAC_LENGTH, open_sealed, seal

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"  # what the Cursor field admits
USER, OTHER = "4c3c9a52-0d8e-4c53-9d3c-0d8f5d3f4a11", "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


class Ring:
    """Two refresh secrets by kid, the newest sealing (common.keys.ring_reader.RefreshSecrets' shape)."""

    def __init__(self, newest: str = "k2") -> None:
        self.secrets = {"k1": b"\x01" * 32, "k2": b"\x02" * 32}
        self.newest = newest

    def newest_kid(self) -> str:
        return self.newest

    def get(self, kid: str) -> bytes | None:
        return self.secrets.get(kid)


RING = Ring()
positions = st.text(alphabet=ALPHABET, min_size=1, max_size=120)


def sealed(position: str, *, listing: str = "history", user_uuid: str = USER, ring: Ring = RING) -> str:
    return seal(position, secrets=ring, listing=listing, user_uuid=user_uuid)


def opened(cursor: str, *, listing: str = "history", user_uuid: str = USER) -> str | None:
    return open_sealed(cursor, secrets=RING, listing=listing, user_uuid=user_uuid)


def encoded(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@EXAMPLES
@given(position=positions)
def test_a_cursor_opens_for_its_own_listing_and_account_only(position):
    cursor = sealed(position)
    assert set(cursor) <= set(ALPHABET) and opened(cursor) == position
    assert opened(cursor, listing="audit") is None and opened(cursor, user_uuid=OTHER) is None
    assert opened(sealed(position, ring=Ring("k1"))) == position  # an older secret of the ring still opens


@st.composite
def edited(draw):
    """(a genuine cursor, an edit of it that is not the same text)."""
    position = draw(positions)
    cursor = sealed(position)
    other = sealed(draw(positions.filter(lambda p: p != position)))
    at = draw(st.integers(0, len(cursor) - 1))
    char = draw(st.sampled_from(ALPHABET))
    text, mac = cursor[:-MAC_LENGTH], cursor[-MAC_LENGTH:]
    edits = [
        cursor[:at] + char + cursor[at + 1:],                          # one character changed
        cursor[:at] + cursor[at + 1:],                                   # one cut
        cursor[:at] + char + cursor[at:],                                # one added
        cursor[at:] + cursor[:at],                                       # rotated
        cursor[:at],                                                     # truncated
        text + other[-MAC_LENGTH:],                                      # another cursor's MAC
        other[:-MAC_LENGTH] + mac,                                       # another cursor's payload
        encoded(["k2", draw(positions)]) + mac,                          # a position of the client's choosing
        encoded(["k1", position]) + mac,                                 # another kid
        encoded(["nope", position]) + mac,                               # a kid the ring does not hold
        encoded({"k": position}) + mac, encoded([position]) + mac, encoded(["k2", position, 1]) + mac,
        draw(st.text(alphabet=ALPHABET, min_size=0, max_size=300)),      # anything at all
    ]
    return cursor, draw(st.sampled_from(edits))


@EXAMPLES
@given(case=edited())
def test_an_edited_cursor_never_opens(case):
    cursor, edit = case
    if edit != cursor:
        assert opened(edit) is None, edit


def test_nesting_or_odd_bytes_in_the_payload_never_raise():
    for raw in (b"[" * 5000 + b"]" * 5000, b"\xff\xfe", b"null", b'["k2", null]', b'["", "x"]', b'["k2", ""]'):
        payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        assert opened(payload + "A" * MAC_LENGTH) is None
    assert opened("") is None and opened("A" * MAC_LENGTH) is None

"""A queued mail's sealed contents (common/mail/sealing.py) and the ids an operator may name (issue 65 item 2),
with the inputs an attacker would try: any text, a sealed value moved to another mail or account, or
changed by one byte, never opens; whatever was sealed opens as it was."""
from __future__ import annotations

import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.mail import sealing
from common.mail.message import Link
from common.mail.outbox_store import is_mail_id


class Secrets:
    def __init__(self) -> None:
        self.by_kid = {"k1": os.urandom(32), "k2": os.urandom(32)}

    def newest_kid(self) -> str:
        return "k2"

    def get(self, kid: str) -> bytes | None:
        return self.by_kid.get(kid)


SECRETS = Secrets()
names = st.text(min_size=1, max_size=20)
params = st.dictionaries(names, st.one_of(st.text(max_size=200), st.integers(-10**9, 10**9),
                                          st.builds(Link, st.sampled_from(["verify", "reset", "not-me"]),
                                                    st.text(min_size=1, max_size=64))), max_size=6)


@given(email=st.one_of(st.none(), st.text(max_size=80)), values=params)
def test_what_is_sealed_opens_as_it_was(email, values):
    kid, sealed = sealing.seal(sealing.Contents(email=email, params=values), secrets=SECRETS, mail_id="m",
                               user_uuid="u")
    opened = sealing.open_sealed(kid, sealed, secrets=SECRETS, mail_id="m", user_uuid="u")
    assert (opened.email, dict(opened.params)) == (email, values)
    for text in [email, *values.values()]:
        if isinstance(text, str) and len(text) > 8:
            assert text.encode() not in sealed  # not in clear


@given(values=params, where=st.sampled_from(["mail", "user", "kid", "byte", "short"]), at=st.integers(0, 10**6))
def test_a_sealed_value_moved_or_changed_never_opens(values, where, at):
    kid, sealed = sealing.seal(sealing.Contents(email="a@example.org", params=values), secrets=SECRETS,
                               mail_id="m1", user_uuid="u1")
    mail_id, user_uuid = ("m2" if where == "mail" else "m1"), ("u2" if where == "user" else "u1")
    if where == "kid":
        kid = "k1"
    if where == "byte":
        changed = bytearray(sealed)
        changed[at % len(changed)] ^= 1
        sealed = bytes(changed)
    if where == "short":
        sealed = sealed[:at % 13]
    with pytest.raises(sealing.Unsealable):
        sealing.open_sealed(kid, sealed, secrets=SECRETS, mail_id=mail_id, user_uuid=user_uuid)


@given(st.one_of(st.text(max_size=80), st.from_regex(r"[0-9a-fA-F]{30,34}", fullmatch=True),
                 st.from_regex(r"\s*[0-9a-f]{32}\s*", fullmatch=True)))
def test_a_mail_id_is_32_lowercase_hex_digits_and_nothing_else(text):
    assert is_mail_id(text) == (len(text) == 32 and all(c in "0123456789abcdef" for c in text))
    assert is_mail_id(os.urandom(16).hex())


def test_an_unknown_kid_does_not_open():
    kid, sealed = sealing.seal(sealing.Contents(email=None, params={}), secrets=SECRETS, mail_id="m", user_uuid="u")
    with pytest.raises(sealing.Unsealable, match=re.escape("k9")):
        sealing.open_sealed("k9", sealed, secrets=SECRETS, mail_id="m", user_uuid="u")

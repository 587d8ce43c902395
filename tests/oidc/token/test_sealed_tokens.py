"""The two self-describing texts an app holds (SPEC §14): a sealed authorization code (oidc.token.codes) and a
refresh token that carries what its grant says (oidc.token.refresh_tokens). What an attacker would send instead —
any text, a real one with a character changed, cut or extended, one sealed under a secret the ring
does not hold, one past its end — is refused (None), never an exception, and never read as another
record. In process: no server, no DynamoDB (neither parser reads anything)."""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field, replace
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.crypto.tokens import keyed_token
from oidc.token import codes
from oidc.token import refresh_tokens as refresh
from oidc.core.models import Code, SignedIn
from common.runtime.context import AppContext

NOW = 1_800_000_000
SESSION = "0f8fad5b-d9cb-469f-a165-70867728950e"


@dataclass
class Secrets:
    """The key ring's refresh secrets as oidc.token.codes and oidc.token.refresh_tokens use them."""

    by_kid: dict[str, bytes] = field(default_factory=lambda: {"k2": b"s" * 32, "k1": b"t" * 32})

    def newest_kid(self) -> str:
        return "k2"

    def get(self, kid: str) -> bytes | None:
        return self.by_kid.get(kid)


@dataclass
class Ctx:
    refresh_secrets: Secrets = field(default_factory=Secrets)


def _ctx(secrets: Secrets | None = None) -> AppContext:
    return cast(AppContext, Ctx(secrets or Secrets()))


RING = Secrets()
CTX = _ctx(RING)
CODE = Code(client_id="app_1", redirect_uri="https://app.example/cb", scope="openid profile",
            code_challenge="c" * 43, code_challenge_method="S256", user_uuid="u-1", session_id=SESSION,
            device_id="d-1", auth_time=NOW - 5, amr=["hwk", "pwd"], nonce="n", person={"preferred_username": "alice"},
            session_expires_epoch=NOW + 3600, request_digest="r" * 64)
SEALED = codes.seal(RING, CODE, now=NOW)
USER = SignedIn(user_uuid="u-1", session_id=SESSION, device_id="d-1", auth_time=NOW - 5, amr=("hwk", "pwd"),
                refresh_generation=3, grant_id="0123456789abcdef", refresh_jkt="j" * 43,
                grant_scope="openid offline_access")
REFRESH = refresh.token_text(RING, USER, client_id="app_1")

edits = st.tuples(st.integers(min_value=0, max_value=2000), st.text(min_size=0, max_size=3),
                  st.integers(min_value=0, max_value=3))


def _edited(text: str, edit: tuple[int, str, int]) -> str:
    at, insert, cut = edit
    at %= len(text) + 1
    return text[:at] + insert + text[at + cut:]


def test_a_sealed_code_opens_to_what_was_sealed_until_its_end_only():
    assert codes.opened(RING, SEALED, now=NOW) == CODE
    assert codes.opened(RING, SEALED, now=NOW + codes.CODE_TTL) is None        # its 60 s are over
    assert codes.opened(Secrets({"k1": b"t" * 32}), SEALED, now=NOW) is None  # its secret left the ring
    assert codes.opened(Secrets({"k2": b"x" * 32}), SEALED, now=NOW) is None  # another secret, same kid
    kid, _, payload = SEALED.partition(".")
    assert codes.opened(RING, f"k1.{payload}", now=NOW) is None                # the kid is authenticated
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    others = [f"{kid}.{payload[:-1]}{c}" for c in last if c != payload[-1]]   # one spelling only
    assert [text for text in others if codes.opened(RING, text, now=NOW) is not None] == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                 edits.map(lambda e: _edited(SEALED, e))))
def test_no_other_text_opens_as_a_code(text):
    opened = codes.opened(RING, text, now=NOW)
    assert opened is None or (text == SEALED and opened == CODE)


def test_a_refresh_token_carries_its_grant_under_its_mac():
    presented = refresh.presented_for_rotation(CTX, REFRESH)
    assert presented is not None and presented.unread and presented.generation == 3
    grant = presented.grant
    assert (grant.user_uuid, grant.device_id, grant.scope, grant.jkt, grant.grant_id) == (
        "u-1", "d-1", "openid offline_access", "j" * 43, "0123456789abcdef")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), edits.map(lambda e: _edited(REFRESH, e)),
                 st.lists(st.text(alphabet="abc0123456789-_", max_size=40), min_size=6, max_size=8).map(".".join)))
def test_no_other_text_is_a_refresh_token(text):
    presented = refresh.presented_for_rotation(CTX, text)  # the earlier form would be read: none parses here
    assert presented is None or text == REFRESH


def test_a_code_or_refresh_token_cut_short_or_with_a_part_swapped_is_refused():
    """Every cut of a real code and refresh token (each length once: the ones base64 cannot decode
    included), and each of the refresh token's eight parts swapped for another value (empty, signed,
    not a number, a non-ASCII digit, a neighbour's): refused, never an exception."""
    assert [n for n in range(len(SEALED)) if codes.opened(RING, SEALED[:n], now=NOW) is not None] == []
    assert [n for n in range(len(REFRESH)) if refresh.presented_for_rotation(CTX, REFRESH[:n]) is not None] == []
    parts = REFRESH.split(".")
    for at in range(len(parts)):
        for value in ("", "0", "-1", "1_0", "x", "é", "\u0663", " 3", "9" * 12, parts[at - 1]):
            edited = ".".join([*parts[:at], value, *parts[at + 1:]])
            assert refresh.presented_for_rotation(CTX, edited) is None, (at, value)


# --- the sealed part: what a refresh token carries is not shown to whoever holds or logs it ------------

def _maced(head: str, secret: bytes = b"s" * 32) -> str:
    """`head` with the MAC the ring's secret gives it: what only citylogin could make."""
    return f"{head}.{keyed_token(secret, f'oidc_refresh:{head}')}"


def _clear(values: list) -> str:
    """A `carried` part as the releases before sealing spelled it: base64url JSON, in clear."""
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def _decodings(text: str) -> list[bytes]:
    """Each dot-separated part of `text` read as base64url, as whoever logs a token could read it."""
    found = []
    for part in text.split("."):
        try:
            found.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (binascii.Error, ValueError):
            continue
    return found


HEAD = f"{SESSION}.app_1.0123456789abcdef.3.k2"
words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8, max_size=40)
addresses = st.tuples(st.from_regex(r"[a-z0-9._+-]{8,30}", fullmatch=True),
                      st.sampled_from(["example.com", "mail.example.org"])).map("@".join)


@settings(max_examples=100, deadline=None)
@given(username=words, locale=st.sampled_from(["en", "ja", "de-CH"]), email=addresses,
       user_uuid=st.uuids().map(str), device_id=st.uuids().map(str))
def test_a_refresh_token_shows_none_of_the_persons_claims_nor_its_grants_ids(username, locale, email, user_uuid,
                                                                             device_id):
    """Neither in its text nor in any part read as base64 (the clear forms before were base64 JSON): the
    user's uuid, the device's id, the username or the address; yet it opens to all of them."""
    user = replace(USER, user_uuid=user_uuid, device_id=device_id, grant_scope="openid profile email offline_access",
                   person={"preferred_username": username, "locale": locale, "zoneinfo": "UTC", "email": email,
                           "email_verified": True})
    text = refresh.token_text(RING, user, client_id="app_1")
    assert text.startswith(f"{HEAD}.{refresh.SEALED_MARK}.")
    shown = text[len(HEAD):]  # the head names the session, client and grant, as every form's did
    secrets_ = [user_uuid, device_id, username, email]
    assert [s for s in secrets_ if s in shown] == []
    spellings = [s.encode() for s in secrets_] + [json.dumps(s).encode() for s in secrets_]
    assert [s for s in spellings for decoded in _decodings(shown) if s in decoded] == []
    presented = refresh.presented_for_rotation(CTX, text)
    assert presented is not None and presented.person is not None
    assert (presented.grant.user_uuid, presented.grant.device_id) == (user_uuid, device_id)
    assert (presented.person["preferred_username"], presented.person["email"]) == (username, email)


def test_an_altered_sealed_part_does_not_open_even_under_a_valid_mac():
    """The MAC refuses any change first; the seal holds on its own: a sealed part with a byte changed, or
    moved to another generation, grant or kid (its head is the associated data), re-MACed as only the
    ring's holder could, does not open."""
    head, mark, sealed, _ = REFRESH.rsplit(".", 3)
    assert (head, mark) == (HEAD, refresh.SEALED_MARK)
    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    flipped = [base64.urlsafe_b64encode(raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1:]).decode().rstrip("=")
               for i in range(len(raw))]
    assert [f for f in flipped if refresh.presented_for_rotation(CTX, _maced(f"{head}.{mark}.{f}"))] == []
    for other in (f"{SESSION}.app_1.0123456789abcdef.4.k2", f"{SESSION}.app_2.0123456789abcdef.3.k2",
                  f"{SESSION}.app_1.0123456789abcdee.3.k2"):
        assert refresh.presented_for_rotation(CTX, _maced(f"{other}.{mark}.{sealed}")) is None, other
    moved = SESSION + ".app_1.0123456789abcdef.3.k1"
    assert refresh.presented_for_rotation(CTX, _maced(f"{moved}.{mark}.{sealed}", b"t" * 32)) is None
    # and the real one, re-MACed the same way, opens: the refusals above are the seal's
    assert refresh.presented_for_rotation(CTX, _maced(f"{head}.{mark}.{sealed}")) is not None


def test_a_sealed_part_is_told_by_its_mark_and_a_clear_one_by_its_absence():
    """A clear part under the mark, or a sealed part without it, is refused even under a valid MAC: the
    form is parsed, never guessed by trying to decode."""
    _, mark, sealed, _ = REFRESH.rsplit(".", 3)
    values = ["u-1", "d-1", "openid offline_access", NOW - 5, ["hwk", "pwd"], "j" * 43, refresh.GRANT_SCOPE_FORM]
    assert refresh.presented_for_rotation(CTX, _maced(f"{HEAD}.{mark}.{_clear(values)}")) is None
    assert refresh.presented_for_rotation(CTX, _maced(f"{HEAD}.{sealed}")) is None
    assert refresh.presented_for_rotation(CTX, _maced(f"{HEAD}.s2.{sealed}")) is None


@pytest.mark.parametrize("form", ["person", "grant scope"])
def test_the_clear_forms_before_sealing_are_still_read_as_they_were(form):
    """A rolling deploy: tokens the release before made (PERSON_FORM, GRANT_SCOPE_FORM) are taken as they
    were, unread; the forms before them, whose grant is read, are in tests/oidc/token/test_refresh_tokens.py."""
    grant = ["u-1", "d-1", "openid profile offline_access", NOW - 5, ["hwk", "pwd"], "j" * 43]
    values = {"person": [*grant, refresh.PERSON_FORM, ["alice", "en", None]],
              "grant scope": [*grant, refresh.GRANT_SCOPE_FORM]}[form]
    presented = refresh.presented_for_rotation(CTX, _maced(f"{HEAD}.{_clear(values)}"))
    assert presented is not None and presented.unread and presented.grant.user_uuid == "u-1"
    assert presented.person == ({"preferred_username": "alice", "locale": "en", "zoneinfo": "UTC"}
                                if form == "person" else None)

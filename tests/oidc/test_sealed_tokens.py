"""The two self-describing texts an app holds (SPEC §14): a sealed authorization code (oidc.codes) and a
refresh token that carries what its grant says (oidc.refresh). What an attacker would send instead —
any text, a real one with a character changed, cut or extended, one sealed under a secret the ring
does not hold, one past its end — is refused (None), never an exception, and never read as another
record. In process: no server, no DynamoDB (neither parser reads anything)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc import codes, refresh
from oidc.models import Code, SignedIn
from web.context import AppContext

NOW = 1_800_000_000
SESSION = "0f8fad5b-d9cb-469f-a165-70867728950e"


@dataclass
class Secrets:
    """The key ring's refresh secrets as oidc.codes and oidc.refresh ask for them."""

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


CTX = _ctx()
CODE = Code(client_id="app_1", redirect_uri="https://app.example/cb", scope="openid profile",
            code_challenge="c" * 43, code_challenge_method="S256", user_uuid="u-1", session_id=SESSION,
            device_id="d-1", auth_time=NOW - 5, amr=["hwk", "pwd"], nonce="n", person={"preferred_username": "alice"},
            session_expires_epoch=NOW + 3600, request_digest="r" * 64)
SEALED = codes.seal(CTX, CODE, now=NOW)
USER = SignedIn(user_uuid="u-1", session_id=SESSION, device_id="d-1", auth_time=NOW - 5, amr=("hwk", "pwd"),
                refresh_generation=3, grant_id="0123456789abcdef", refresh_jkt="j" * 43,
                grant_scope="openid offline_access")
REFRESH = refresh.token_text(CTX, USER, client_id="app_1")

edits = st.tuples(st.integers(min_value=0, max_value=2000), st.text(min_size=0, max_size=3),
                  st.integers(min_value=0, max_value=3))


def _edited(text: str, edit: tuple[int, str, int]) -> str:
    at, insert, cut = edit
    at %= len(text) + 1
    return text[:at] + insert + text[at + cut:]


def test_a_sealed_code_opens_to_what_was_sealed_until_its_end_only():
    assert codes.opened(CTX, SEALED, now=NOW) == CODE
    assert codes.opened(CTX, SEALED, now=NOW + codes.CODE_TTL) is None             # its 60 s are over
    assert codes.opened(_ctx(Secrets({"k1": b"t" * 32})), SEALED, now=NOW) is None  # its secret left the ring
    assert codes.opened(_ctx(Secrets({"k2": b"x" * 32})), SEALED, now=NOW) is None  # another secret, same kid
    kid, _, payload = SEALED.partition(".")
    assert codes.opened(CTX, f"k1.{payload}", now=NOW) is None                     # the kid is authenticated
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    others = [f"{kid}.{payload[:-1]}{c}" for c in last if c != payload[-1]]        # one spelling only
    assert [text for text in others if codes.opened(CTX, text, now=NOW) is not None] == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                 edits.map(lambda e: _edited(SEALED, e))))
def test_no_other_text_opens_as_a_code(text):
    opened = codes.opened(CTX, text, now=NOW)
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
    included), and each of the refresh token's seven parts swapped for another value (empty, signed,
    not a number, a non-ASCII digit, a neighbour's): refused, never an exception."""
    assert [n for n in range(len(SEALED)) if codes.opened(CTX, SEALED[:n], now=NOW) is not None] == []
    assert [n for n in range(len(REFRESH)) if refresh.presented_for_rotation(CTX, REFRESH[:n]) is not None] == []
    parts = REFRESH.split(".")
    for at in range(len(parts)):
        for value in ("", "0", "-1", "1_0", "x", "é", "\u0663", " 3", "9" * 12, parts[at - 1]):
            edited = ".".join([*parts[:at], value, *parts[at + 1:]])
            assert refresh.presented_for_rotation(CTX, edited) is None, (at, value)

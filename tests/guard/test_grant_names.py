"""How the guard reads the app grant an access token names (its jti, `<grant_id>.<generation>`) and the grant
a session-revoked SET names (SPEC §14): the same grammar as citylogin's own (oidc.app_grants.ending), matched whole.
Whatever text an attacker or a bug puts there, the guard and citylogin read it alike: one spelling per
grant, nothing around it, no other digits, no case folding."""
from __future__ import annotations

import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from citylogin_guard.jwks import KeySet
from citylogin_guard.tokens import GRANT_CLAIM, SESSION_REVOKED, InvalidSecurityEvent, named_grant, sessions_ended
from oidc.app_grants import ending as grants
from tests.guard.transmitter import Signer

GRANT_IDS = st.from_regex(r"[0-9a-f]{16,32}", fullmatch=True)
GENERATIONS = st.integers(min_value=0, max_value=999_999_999)
VALID_JTI = st.builds(lambda grant, generation: grants.access_token_id(grant_id=grant, generation=generation),
                      GRANT_IDS, GENERATIONS)


@st.composite
def edited_jtis(draw: st.DrawFn) -> str:
    """A valid jti with an edit an attacker or a bug would try: a character put in, taken out or changed
    (case, another digit system, a second dot, whitespace, a newline at the end)."""
    text = draw(VALID_JTI)
    at = draw(st.integers(min_value=0, max_value=len(text)))
    piece = draw(st.sampled_from(["", ".", "..", " ", "\n", "\t", "A", "F", "g", "-", "+", "0", "١", "０", "%2e",
                                  "\x00", "/", "=", "é"]))
    cut = draw(st.integers(min_value=0, max_value=2))
    return draw(st.sampled_from([text[:at] + piece + text[at + cut:], text.upper(), text + piece, piece + text]))


@settings(max_examples=300, deadline=None)
@given(jti=st.one_of(st.text(max_size=60), VALID_JTI, edited_jtis(), st.integers(), st.none()))
@example(jti="0123456789abcdef.1\n")
@example(jti="0123456789ABCDEF.1")
@example(jti="0123456789abcdef.١")
@example(jti="0123456789abcdef.1.2")
@example(jti="0123456789abcdef.")
@example(jti="0000000000000000.00")  # a leading zero: another spelling of generation 0
def test_the_guard_reads_a_tokens_grant_as_citylogin_does_and_in_one_spelling(jti):
    claims = {"jti": jti}
    read = named_grant(claims)
    assert read == grants.named_grant(claims) if isinstance(jti, str) else read is None
    if read is not None:  # only the text citylogin forms: the grant and a generation, nothing else
        grant, _, generation = jti.partition(".")
        assert read == grant and grants.access_token_id(grant_id=grant, generation=int(generation)) == jti


@given(grant=GRANT_IDS, generation=GENERATIONS)
def test_every_jti_citylogin_forms_names_its_grant_to_the_guard(grant, generation):
    assert named_grant({"jti": grants.access_token_id(grant_id=grant, generation=generation)}) == grant


SIGNER, ISSUER, CLIENT_ID = Signer(), "https://citylogin.example", "app-1"
KEYS = KeySet(lambda: {"keys": [SIGNER.jwk()]})


def _set_naming(grant: object) -> str:
    event = {"subject": {"format": "complex", "session": {"format": "opaque", "id": "s-1"}},
             "event_timestamp": 1795000000, "reason_admin": {"en": "refresh_reuse"}, GRANT_CLAIM: grant}
    return SIGNER.sign({"iss": ISSUER, "aud": CLIENT_ID, "jti": "j", "iat": int(time.time()),
                        "events": {SESSION_REVOKED: event}}, typ="secevent+jwt")


@settings(max_examples=150, deadline=None)
@given(grant=st.one_of(GRANT_IDS, edited_jtis().map(lambda jti: jti.split(".")[0]), st.text(max_size=40)))
@example(grant="0123456789abcdef\n")
@example(grant="0123456789ABCDEF")
def test_a_sets_grant_is_taken_only_in_citylogins_spelling_and_never_as_the_sessions_end(grant):
    """A grant the guard cannot read is an invalid SET (not acknowledged, asked for again), never taken
    for the whole session's end nor skipped."""
    token = _set_naming(grant)
    if grants.named_grant({"jti": f"{grant}.0"}) == grant:
        [ended] = sessions_ended(token, keys=KEYS, issuer=ISSUER, client_id=CLIENT_ID, leeway=1.0)
        assert ended.grant_id == grant and ended.session_id == "s-1"
    else:
        with pytest.raises(InvalidSecurityEvent):
            sessions_ended(token, keys=KEYS, issuer=ISSUER, client_id=CLIENT_ID, leeway=1.0)

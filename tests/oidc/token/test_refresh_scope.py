"""The scope of a refresh's answer (RFC 6749 §6, oidc.token.refresh_token), property-based: any part of the scope
originally granted, the whole of it when none is named; a token the grant was not given is invalid_scope,
whatever surrounds it. What an attacker would send around a valid scope — duplicates, runs of spaces,
unknown scopes, a granted name in another case, joined by a tab, a comma or a no-break space, or a
look-alike letter — never reads as a granted token. The expected answer is built from the tokens the
test drew, never by parsing what it sends."""
from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749 import InvalidScopeError
from hypothesis import given
from hypothesis import strategies as st

from oidc.core.models import SCOPES
from oidc.token.refresh_token import refreshed_scope, scope_tokens

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
NQCHAR = "".join(chr(c) for c in range(0x21, 0x7F) if c not in (0x22, 0x5C))
KNOWN = st.sampled_from(SCOPES)
NEAR_MISSES = st.one_of(
    KNOWN.map(str.upper), KNOWN.map(str.title), KNOWN.map(lambda s: s + "s"), KNOWN.map(lambda s: s[:-1]),
    st.tuples(KNOWN, KNOWN, st.sampled_from(["\t", ",", "+", "%20", "\u00a0", "\u3000", "\n"])).map(
        lambda t: t[0] + t[2] + t[1]),
    KNOWN.map(lambda s: s.replace("o", "\u043e")),   # a Cyrillic o
    KNOWN.map(lambda s: s + "\x00"), KNOWN.map(lambda s: '"' + s + '"'))
OTHER = st.one_of(st.sampled_from(["address", "phone", "admin", "openid:admin", "*"]),
                  st.text(alphabet=NQCHAR, min_size=1, max_size=12), NEAR_MISSES)
SPACES = st.text(alphabet=" ", min_size=1, max_size=3)


def _sent(tokens: list[str], gaps: list[str], ends: tuple[str, str]) -> str:
    """`tokens` joined by the runs of spaces drawn (in turn), with spaces before and after."""
    text = ""
    for n, token in enumerate(tokens):
        text += (gaps[n % len(gaps)] if gaps else " ") + token if n else token
    return ends[0] + text + ends[1]


@st.composite
def grants(draw) -> list[str]:
    """A grant's scope tokens in its order: the known scopes the authorization kept (openid always)."""
    rest = draw(st.lists(st.sampled_from(SCOPES[1:]), unique=True))
    return ["openid", *rest]


ENDS = st.tuples(st.text(alphabet=" ", max_size=2), st.text(alphabet=" ", max_size=2))


@given(granted=grants(), picks=st.data(), spaces=st.lists(SPACES, max_size=4), ends=ENDS)
def test_any_part_of_the_grant_is_that_part_in_the_grants_order(granted, picks, spaces, ends):
    wanted = picks.draw(st.lists(st.sampled_from(granted), min_size=1))   # duplicates too
    shuffled = picks.draw(st.permutations(wanted))
    answer = refreshed_scope(granted=" ".join(granted), asked=_sent(list(shuffled), spaces, ends))
    assert answer == " ".join(token for token in granted if token in wanted)
    # the answer is itself a part of the grant, and asked again it is the same
    assert refreshed_scope(granted=" ".join(granted), asked=answer) == answer


@given(granted=grants(), spaces=st.lists(SPACES, max_size=4), ends=ENDS,
       asked=st.sampled_from([None, "", " ", "   "]))
def test_a_scope_that_names_nothing_is_the_whole_grant(granted, spaces, ends, asked):
    whole = " ".join(granted)
    assert refreshed_scope(granted=whole, asked=asked) == whole
    # a grant written with runs of spaces or a repeated token (never by citylogin) answers it tidied
    assert refreshed_scope(granted=_sent([*granted, *granted], spaces, ends), asked=asked) == whole


@given(granted=grants(), picks=st.data(), other=OTHER, spaces=st.lists(SPACES, max_size=4), ends=ENDS)
def test_a_token_the_grant_was_not_given_is_invalid_scope_whatever_surrounds_it(granted, picks, other, spaces,
                                                                               ends):
    if other in granted:
        return  # a known scope the grant holds: the first property's case
    wanted = picks.draw(st.lists(st.sampled_from(granted), max_size=4))
    sent = picks.draw(st.permutations([*wanted, other]))
    with pytest.raises(InvalidScopeError) as refused:
        refreshed_scope(granted=" ".join(granted), asked=_sent(list(sent), spaces, ends))
    assert refused.value.error == "invalid_scope"


def test_the_grants_own_tokens_not_named_are_left_out_and_unknown_ones_refused():
    granted = "openid profile email offline_access"
    assert refreshed_scope(granted=granted, asked="openid") == "openid"
    assert refreshed_scope(granted=granted, asked="email  openid email") == "openid email"
    assert refreshed_scope(granted=granted, asked=None) == granted
    assert scope_tokens(" a  b a ") == ("a", "b")
    for beyond in ("openid address", "OPENID", "openid\temail", "openid\u00a0email", "openid,email"):
        with pytest.raises(InvalidScopeError):
            refreshed_scope(granted=granted, asked=beyond)
    with pytest.raises(InvalidScopeError):
        refreshed_scope(granted="openid", asked="offline_access")   # narrowed grants stay narrow

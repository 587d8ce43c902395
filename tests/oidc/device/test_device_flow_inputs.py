"""No input to the device authorization grant (RFC 8628, SPEC §14) is a 500, and no typed code is another's,
property-based: the screen's form bodies at /oidc/device_authorization and at /oidc/token's device-code grant
(repeated, missing and mutated parameters, control characters, huge values, odd grant types, unknown clients,
Basic headers that do not decode) always get RFC 6749 JSON with an error of the standards' list; the user codes
a person (or an attacker) types at /oidc/device/lookup, /approve and /deny (letters that upper-case to ASCII,
fullwidth letters, homoglyphs, vowels, 7 or 9 letters, dashes anywhere, NULs) get invalid_user_code or a body
refusal, problem+json, and reach a live code only when they normalise to it; that refusal leaves the code
pending. And oidc.device.flow.normalized itself: what it accepts is 8 letters of the alphabet once the text is
in NFKC, its dashes and spaces gone and its ASCII upper-cased; every valid code is accepted in any case, dash
form and compatibility form (full width, as a Japanese IME types it); a look-alike of another script or a
letter that only case-maps into the alphabet never is."""
from __future__ import annotations

import base64
import unicodedata

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.app import create_app
from oidc.device.flow import USER_CODE_ALPHABET, USER_CODE_LENGTH, normalized, shown
from tests.conftest import FAST_ARGON2, RAISED_LIMITS
from tests.oidc.test_odd_parameters import AUTHORIZATION_HEADERS, DESCRIBABLE, LONG, ODD, fields
from tests.support.device_flow import GRANT_TYPE, ask, screen_app
from tests.support.live import PASSWORD, register_device, serving

# the suite's "citylogin" profile (tests/conftest.py: no per-example deadline) with fewer examples: each
# example of the HTTP properties asks for a fresh code over a socket
EXAMPLES = settings(max_examples=40, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
TOO_LARGE = 413
# RFC 6749 §5.2 and RFC 8628 §3.5: what these two endpoints may answer. No code is ever approved here, so
# the grant can only refuse: a pending code's own answers, or the standard's refusals of the request.
AUTHORIZATION_ERRORS = frozenset({"invalid_request", "invalid_client", "unauthorized_client", "invalid_scope"})
POLL_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                         "unsupported_grant_type", "invalid_scope", "authorization_pending", "slow_down"})
BODY_REFUSALS = frozenset({"missing_fields", "invalid_field", "invalid_json"})
VOWELS_AND_LOOKALIKES = "AEIOUYL01"
# Letters that are not ASCII but say an alphabet letter to a reader or to Python: those whose upper or lower
# case or NFKC form is it ('ſ'.upper() == 'S', the Kelvin sign, fullwidth, circled, mathematical letters), and
# Cyrillic and Greek capitals drawn alike; and ligatures that upper-case to two letters ('ß' -> 'SS'). Those
# whose NFKC form is the letter are it; the others are not.
_DRAWN_ALIKE = {"B": "ВΒ", "C": "СϹ", "H": "НΗ", "K": "КΚ", "M": "МΜ", "N": "Ν", "P": "РΡ", "T": "ТΤ",
                "X": "ХΧ", "Z": "Ζ"}
HOMOGLYPHS = {letter: "".join(c for c in map(chr, range(0x80, 0x20000))
                              if letter in (c.upper(), c.lower().upper(), unicodedata.normalize("NFKC", c).upper()))
                      + _DRAWN_ALIKE.get(letter, "")
              for letter in USER_CODE_ALPHABET}
FEWEST_HOMOGLYPHS = min(len(glyphs) for glyphs in HOMOGLYPHS.values())
LIGATURES = {"ß": "SS", "ﬀ": "FF", "ﬅ": "ST", "ﬆ": "ST"}
LOOKALIKES = "".join(HOMOGLYPHS.values()) + "".join(LIGATURES)
# Look-alikes of other scripts (no compatibility form of a Latin letter): never a letter of the code.
OTHER_SCRIPTS = {letter: "".join(c for c in glyphs if not unicodedata.normalize("NFKC", c).isascii())
                 for letter, glyphs in HOMOGLYPHS.items()}
# The compatibility forms (NFKC) of each letter: full width in both cases, and the others Unicode has.
COMPATIBLE = {letter: "".join(c for c in glyphs if unicodedata.normalize("NFKC", c).upper() == letter)
              for letter, glyphs in HOMOGLYPHS.items()}
# What may stand between the letters, as typed: ASCII, the full width and small hyphen-minus, the dashes,
# the minus sign, the long-vowel mark (the "-" key of a Japanese IME in kana mode, also half width), and the
# spaces (no-break, ideographic, em).
SEPARATORS = "- \t\uff0d\ufe63\u2010\u2011\u2012\u2013\u2014\u2015\ufe58\u2212\u30fc\uff70\u00a0\u3000\u2003"


@pytest.fixture(scope="module")
def provider(dynamodb_endpoint, data_dir, table_prefix):
    """The all-in-one app on a socket (the phone's DPoP proofs name its URL) and its test client, with a
    confidential and a public screen app, an app not allowed the grant, and a signed-in phone; no device
    limit, so that every approval a matching code makes opens its seat."""
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "CRITICAL", **FAST_ARGON2, **RAISED_LIMITS,
                      "deletion_sweep_interval": 0, "ssf_push_interval": 0, "session_sweep_interval": 0,
                      "device_poll_interval": 1, "max_concurrent_devices": 0})
    ctx = app.extensions["citylogin"]
    confidential, public = screen_app(ctx), screen_app(ctx, name="CLI", public=True)
    other = apps.add_app(ctx, name="Notes", push_url=None,
                         oidc=OidcClient(redirect_uris=("https://app.example/callback",)))
    with serving(app) as url:
        phone = register_device(url)
        phone.login(PASSWORD)
        yield url, app.test_client(), confidential, public, other, phone


def _assert_oauth_error(response, allowed: frozenset[str]) -> None:
    """RFC 6749 §5.2: JSON with an `error` of `allowed` (400, or 401 with WWW-Authenticate), never
    problem+json, never a 500."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code == TOO_LARGE:
        return
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.get_json()
    assert response.status_code in (400, 401), (response.status_code, body)
    assert body["error"] in allowed, body
    assert response.status_code != 401 or response.headers.get("WWW-Authenticate"), body
    assert all(c in DESCRIBABLE for c in body.get("error_description", "")), body


def _basic(credentials) -> str:
    raw = f"{credentials.app.client_id}:{credentials.client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _headers(data, credentials) -> dict[str, str]:
    """The confidential app's own Basic header, none, or an odd one (one that does not decode, or names
    nobody)."""
    header = data.draw(st.one_of(st.just(_basic(credentials)), AUTHORIZATION_HEADERS))
    return {"Authorization": header} if header else {}


@given(data=st.data())
@EXAMPLES
def test_device_authorization_bodies_get_rfc6749_errors(provider, data):
    _, client, confidential, public, other, _ = provider
    valid = data.draw(st.sampled_from([
        {"client_id": public.app.client_id, "scope": "openid profile offline_access"},
        {"client_id": confidential.app.client_id, "client_secret": confidential.client_secret, "scope": "openid"},
        {"client_id": other.app.client_id, "client_secret": other.client_secret, "scope": "openid"}]))
    form = data.draw(fields(valid))
    response = client.post("/oidc/device_authorization", data=form, headers=_headers(data, confidential))
    if response.status_code == 200:  # what was left of the request still names an app allowed the grant
        answer = response.get_json()
        assert normalized(answer["user_code"]) is not None and answer["device_code"], answer
        return
    _assert_oauth_error(response, AUTHORIZATION_ERRORS)


GRANT_TYPES = st.sampled_from([GRANT_TYPE, GRANT_TYPE.upper(), GRANT_TYPE + " ", "device_code",
                               "urn:ietf:params:oauth:grant-type:device-code", GRANT_TYPE + "\x00",
                               "urn:ietf:params:oauth:grant-type:jwt-bearer", "authorization_code", ""])


@given(data=st.data())
@EXAMPLES
def test_device_code_polls_get_rfc6749_errors_and_never_tokens(provider, data):
    url, client, confidential, public, other, _ = provider
    screen = data.draw(st.sampled_from([confidential, public]))
    device_code = ask(url, screen).json()["device_code"]  # pending: no form of a poll may get tokens for it
    valid = {"grant_type": data.draw(GRANT_TYPES), "device_code": device_code,
             "client_id": data.draw(st.sampled_from([screen.app.client_id, other.app.client_id, "nobody"]))}
    if screen is confidential:
        valid["client_secret"] = confidential.client_secret
    form = data.draw(fields(valid))
    _assert_oauth_error(client.post("/oidc/token", data=form, headers=_headers(data, confidential)), POLL_ERRORS)


# --- user codes -------------------------------------------------------------------------------------

def _fullwidth(letter: str) -> str:
    return chr(ord(letter) + 0xFEE0)


@st.composite
def disguised(draw: st.DrawFn, spelled: str) -> str:
    """`spelled` (a code in some case and dash form) with one or two of its letters each written as a
    character that is not ASCII but says that very letter: what a lax parser would take for the code. What
    is drawn does not depend on which letters the code has (Hypothesis replays a failure on another code)."""
    letters = [at for at, ch in enumerate(spelled) if ch.upper() in USER_CODE_ALPHABET]
    for at in draw(st.lists(st.sampled_from(letters), min_size=1, max_size=2, unique=True)):
        choices = HOMOGLYPHS[spelled[at].upper()]
        spelled = spelled[:at] + choices[draw(st.integers(0, FEWEST_HOMOGLYPHS - 1)) % len(choices)] + spelled[at + 1:]
    return spelled


@st.composite
def ligatured(draw: st.DrawFn, code: str) -> str:
    """`code` with two of its letters made the pair a ligature upper-cases to, written as that ligature."""
    ligature = draw(st.sampled_from(sorted(LIGATURES)))
    at = draw(st.integers(0, USER_CODE_LENGTH - 2))
    return code[:at] + ligature + code[at + 2:]


@st.composite
def typed(draw: st.DrawFn, code: str) -> object:
    """What a person or an attacker types for the live `code` (8 letters): the code in any case with dashes
    and spaces anywhere (a match), or near misses: a letter swapped for a vowel or look-alike, a fullwidth or
    homoglyph letter, 7 or 9 letters, a NUL or a line break inside, another code, anything; or no string.
    What is drawn does not depend on the code's letters (Hypothesis replays a failure on another code)."""
    letters = list(code)
    at = draw(st.integers(0, USER_CODE_LENGTH - 1))
    near = [
        st.just(code[:at] + draw(st.sampled_from(VOWELS_AND_LOOKALIKES)) + code[at + 1:]),
        st.just(code[:at] + _fullwidth(code[at]) + code[at + 1:]),
        st.just(code[:at] + draw(st.sampled_from(LOOKALIKES)) + code[at + 1:]),
        st.just(code[:at] + code[at + 1:]),                                           # 7 letters
        st.just(code[:at] + draw(st.sampled_from(USER_CODE_ALPHABET)) + code[at:]),   # 9 letters
        st.just(code[:at] + draw(st.sampled_from(["\x00", "\n", "\r\n", "\u200b", "_", ".", "\u2010"]))
                + code[at:]),
        st.text(alphabet=USER_CODE_ALPHABET, min_size=USER_CODE_LENGTH, max_size=USER_CODE_LENGTH),
        st.text(max_size=40), ODD, LONG,
    ]
    spelled = "".join(ch.lower() if draw(st.booleans()) else ch for ch in letters)
    cut = sorted(draw(st.lists(st.integers(0, USER_CODE_LENGTH), max_size=3)))
    for offset, place in enumerate(cut):  # dashes and spaces in odd places
        spelled = spelled[:place + offset] + draw(st.sampled_from(["-", " "])) + spelled[place + offset:]
    # what str.upper() or str.lower() takes for an alphabet letter: the long s and the Kelvin sign
    lax = code.lower().replace("s", "\u017f").replace("k", "\u212a")
    text = draw(st.one_of(st.just(spelled), disguised(spelled), st.just(lax), st.just(lax), *near))
    return draw(st.one_of(st.just(text), st.just(text), st.just(text),
                          st.sampled_from([None, 12345678, [code], {"code": code}, True])))


def _problem(response: requests.Response) -> str:
    assert response.status_code < 500, response.text[:500]
    assert response.headers.get("Content-Type", "").startswith("application/problem+json"), response.text[:300]
    body = response.json()
    assert body["status"] == response.status_code, body
    return body["code"]


def _still_pending(url: str, code: str) -> None:
    looked = requests.post(url + "/oidc/device/lookup", json={"user_code": code}, timeout=30)
    assert looked.status_code == 200, looked.text


def _screen_code(url: str, screen) -> str:
    """A fresh live user code, bare: its own tries (RFC 8628 §5.1), never the previous example's."""
    answer = ask(url, screen)
    assert answer.status_code == 200, answer.text
    code = normalized(answer.json()["user_code"])
    assert code is not None
    return code


def _letters(value: str) -> str | None:
    """The contract, apart from the parser under test: the text in NFKC without its separators, if that is
    ASCII, upper-cased."""
    bare = "".join(ch for ch in unicodedata.normalize("NFKC", value) if ch not in SEPARATORS)
    return bare.upper() if bare.isascii() else None


def _spells(value: object, code: str) -> bool:
    """`value` is `code` by the contract: at most 32 characters whose letters are it."""
    return isinstance(value, str) and len(value) <= 32 and _letters(value) == code


def _send(phone, url: str, endpoint: str, value: object, *, present: bool) -> requests.Response:
    body: dict[str, object] = {"user_code": value} if present else {}
    if endpoint == "approve":
        return phone.request("POST", "/oidc/device/approve",
                             json={**body, "device_name": "Living-room TV", "force": True})
    return requests.post(f"{url}/oidc/device/{endpoint}", json=body, timeout=30)


@pytest.mark.parametrize("endpoint", ["lookup", "approve", "deny"])
@given(data=st.data())
@EXAMPLES
def test_a_typed_user_code_reaches_a_live_code_only_when_it_normalises_to_it(provider, endpoint, data):
    url, _, _, public, _, phone = provider
    code = _screen_code(url, public)
    present = data.draw(st.integers(0, 15)) > 0
    value = data.draw(typed(code))
    answer = _send(phone, url, endpoint, value, present=present)
    if present and _spells(value, code):
        assert answer.status_code == 200, (value, answer.text)
        if endpoint == "lookup":
            assert answer.json()["user_code"] == shown(code)
        return
    refusal = _problem(answer)
    assert answer.status_code == 400 and refusal in {"invalid_user_code", *BODY_REFUSALS}, (value, answer.text)
    if not present:
        assert refusal == "missing_fields"
    _still_pending(url, code)  # a refusal decided nothing: the code can still be approved


def test_a_code_typed_in_full_width_is_looked_up_and_denied(provider):
    """ＷＮＪＮ－ＶＳＳＸ, as a Japanese IME types the screen's WNJN-VSSX, is that code at the page's lookup and
    deny; a Cyrillic look-alike in it is not."""
    url, _, _, public, _, _ = provider
    code = _screen_code(url, public)
    wide = "".join(_fullwidth(ch) for ch in code[:4]) + "\uff0d" + "".join(_fullwidth(ch) for ch in code[4:])
    looked = requests.post(url + "/oidc/device/lookup", json={"user_code": wide}, timeout=30)
    assert looked.status_code == 200 and looked.json()["user_code"] == shown(code), looked.text
    cyrillic = code.replace(code[0], "\u0412", 1) if code[0] == "B" else "\u0421" + code[1:]
    refused = requests.post(url + "/oidc/device/deny", json={"user_code": cyrillic}, timeout=30)
    assert _problem(refused) == "invalid_user_code"
    denied = requests.post(url + "/oidc/device/deny", json={"user_code": wide.lower().replace("\uff0d", "\u3000")},
                           timeout=30)
    assert denied.status_code == 200 and denied.json()["status"] == "denied", denied.text


# --- the parser alone -------------------------------------------------------------------------------

CODES = st.text(alphabet=USER_CODE_ALPHABET, min_size=USER_CODE_LENGTH, max_size=USER_CODE_LENGTH)
# near-codes: the alphabet in both cases, separators, the vowels, and letters that are not ASCII
NEAR = st.text(alphabet=USER_CODE_ALPHABET + USER_CODE_ALPHABET.lower() + "_." + SEPARATORS + VOWELS_AND_LOOKALIKES
               + LOOKALIKES + "".join(_fullwidth(c) for c in USER_CODE_ALPHABET) + "\x00\u200b\u1680",
               max_size=36)
PURE = settings(max_examples=500)


@given(typed_text=st.one_of(NEAR, st.text(max_size=40), CODES.flatmap(disguised), CODES.flatmap(ligatured)))
@PURE
def test_what_normalized_accepts_is_eight_letters_of_the_alphabet(typed_text):
    accepted = normalized(typed_text)
    bare = _letters(typed_text)
    valid = bare is not None and len(bare) == USER_CODE_LENGTH and set(bare) <= set(USER_CODE_ALPHABET)
    assert accepted == (bare if len(typed_text) <= 32 and valid else None)


@given(code=CODES, data=st.data())
@PURE
def test_every_valid_code_is_accepted_in_any_case_and_dash_form(code, data):
    spelled = ""
    for ch in code:
        spelled += data.draw(st.sampled_from(["", "", "-", " "])) + (ch.lower() if data.draw(st.booleans()) else ch)
    spelled += data.draw(st.sampled_from(["", " ", "-"]))
    assert normalized(spelled) == code
    assert normalized(shown(code)) == code and normalized(shown(code).lower()) == code


def test_the_code_a_japanese_keyboard_types_is_the_code():
    """Full width letters and hyphen-minus, as a Japanese IME types them, and an ideographic space."""
    assert normalized("ＷＮＪＮ－ＶＳＳＸ") == "WNJNVSSX"
    assert normalized("ｗｎｊｎ　ｖｓｓｘ") == "WNJNVSSX"
    assert normalized("ＷＮＪＮーＶＳＳＸ") == "WNJNVSSX"  # the "-" key in kana mode: the long-vowel mark
    assert normalized("WNJN\u2212VSSX") == normalized("WNJN\u2013VSSX") == "WNJNVSSX"


@given(code=CODES, data=st.data())
@PURE
def test_compatibility_forms_are_the_code(code, data):
    """Each letter in either case, full width or any other compatibility form of it (circled, mathematical,
    the Kelvin sign, the long s), with any separators between them."""
    spelled = ""
    for ch in code:
        spelled += data.draw(st.sampled_from(["", "", *SEPARATORS]))
        spelled += data.draw(st.sampled_from([ch, ch.lower(), _fullwidth(ch), _fullwidth(ch.lower()), *COMPATIBLE[ch]]))
    assert normalized(spelled) == code


@given(code=CODES, data=st.data())
@PURE
def test_look_alikes_from_other_scripts_stay_refused(code, data):
    """A Cyrillic or Greek letter drawn as one of the code's (one or more of them, among full width letters
    and any separators) is no letter of the code, nor is a ligature that upper-cases into it ('ß')."""
    spelled = [data.draw(st.sampled_from([ch, _fullwidth(ch), ch.lower()])) for ch in code]
    drawn_alike = [at for at, ch in enumerate(code) if OTHER_SCRIPTS[ch]]
    assume(drawn_alike)  # D, F, G, ... have no look-alike in another script
    for at in data.draw(st.lists(st.sampled_from(drawn_alike), min_size=1, max_size=3, unique=True)):
        glyphs = OTHER_SCRIPTS[code[at]]
        spelled[at] = glyphs[data.draw(st.integers(0, len(glyphs) - 1))]
    typed_text = data.draw(st.sampled_from(["", "-", "\u3000", "\uff0d"])).join([
        "".join(spelled[:4]), "".join(spelled[4:])])
    assert normalized(typed_text) is None
    assert normalized(code[:2] + "ß" + code[4:]) is None


@given(code=CODES, at=st.integers(0, USER_CODE_LENGTH - 1),
       foreign=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)))
@PURE
def test_no_other_non_ascii_character_is_accepted(code, at, foreign):
    """In place of a letter, only a compatibility form of a letter of the alphabet (then the code with that
    letter); beside the eight, only a separator."""
    compatible = unicodedata.normalize("NFKC", foreign)
    letter = compatible.upper() if compatible.isascii() and len(compatible) == 1 else ""
    instead = code[:at] + letter + code[at + 1:] if letter and letter in USER_CODE_ALPHABET else None
    assert normalized(code[:at] + foreign + code[at + 1:]) == instead
    assert normalized(code[:at] + foreign + code[at:]) == (code if compatible in SEPARATORS else None)
    assert normalized(foreign) is None

"""The presets' quirks (SPEC §16): Microsoft's multi-tenant issuer, whose discovery document's `issuer` holds
{tenantid}, and Apple's boolean claims that may come as strings."""
from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from federation.presets import PRESETS, claim_is_true, issuer_matches

COMMON = "https://login.microsoftonline.com/common/v2.0"
TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
TID = "9188040d-6c67-4c5b-b112-36a304b66dad"


def matches(token_iss: str, tid: object = TID, *, configured: str = COMMON, metadata: str = TEMPLATE) -> bool:
    return issuer_matches(configured=configured, metadata_issuer=metadata, token_iss=token_iss, tid=tid)


def test_each_preset_carries_its_providers_defaults_and_quirks():
    google, apple, microsoft = PRESETS["google"], PRESETS["apple"], PRESETS["microsoft"]
    assert (google.issuer, google.scope, google.token_auth_method, google.response_mode) == (
        "https://accounts.google.com", "openid email profile", "client_secret_basic", "query")
    assert (apple.issuer, apple.scope, apple.token_auth_method, apple.response_mode, apple.jwt_client_secret) == (
        "https://appleid.apple.com", "openid email name", "client_secret_post", "form_post", True)
    assert apple.email_verified_may_be_string and apple.name_in_first_form_post
    assert (microsoft.issuer, microsoft.tenant_issuer) == (COMMON, True)
    assert PRESETS["generic"].issuer is None
    assert [p.display_name for p in (google, apple, microsoft)] == ["Google", "Apple", "Microsoft"]


def test_a_claim_is_true_only_as_true_or_the_string_true():
    assert [claim_is_true(v) for v in (True, "true", "True", 1, "1", None, False, "false")] == [
        True, True, False, False, False, False, False, False]


def test_the_tenants_issuer_is_the_template_with_the_tokens_tid():
    assert matches(f"https://login.microsoftonline.com/{TID}/v2.0")
    other = str(uuid.uuid4())
    assert not matches(f"https://login.microsoftonline.com/{other}/v2.0")          # another tenant's iss
    assert not matches(f"https://login.microsoftonline.com/{TID}/v2.0", tid=None)   # no tid
    assert not matches("https://login.microsoftonline.com/x/../v2.0", tid="x/..")   # a tid that is no GUID
    assert not matches(f"https://login.microsoftonline.com/{TID}/v2.0",
                       metadata="https://evil.example/{tenantid}/v2.0")            # a template of another origin


def test_without_a_template_the_issuer_is_matched_exactly():
    google = "https://accounts.google.com"
    assert issuer_matches(configured=google, metadata_issuer=google, token_iss=google, tid=None)
    assert not issuer_matches(configured=google, metadata_issuer=google, token_iss=google + "/", tid=None)
    assert not issuer_matches(configured=google, metadata_issuer="https://evil.example", token_iss="https://evil.example",
                              tid=None)   # OIDC Discovery §4.3: the document's issuer is the configured one


_HOSTS = ["login.microsoftonline.com", "login.microsoftonline.com.evil.example", "evil.example",
          "login.microsoftonline.co", "LOGIN.microsoftonline.com", "login.microsoftonline.com.",
          "login.microsoftonline.com@evil.example", "evil.example@login.microsoftonline.com",
          "login.microsoftonline.com:443", "login.microsoftonline.com:8443", "xn--login-microsoftonline-com"]
_SCHEMES = ["https", "http", "HTTPS", "ftp"]
_SUFFIXES = ["", "/", "?x=1", "#frag", "/extra", "%2F", "/.."]
_VERSIONS = ["v2.0", "v1.0", "V2.0", ""]


@settings(max_examples=600)
@given(scheme=st.sampled_from(_SCHEMES), host=st.sampled_from(_HOSTS), version=st.sampled_from(_VERSIONS),
       suffix=st.sampled_from(_SUFFIXES), tenant=st.one_of(st.just(TID), st.just(TID.upper()), st.uuids().map(str),
                                                           st.text(max_size=40)),
       tid=st.one_of(st.just(TID), st.uuids().map(str), st.text(max_size=40), st.none()))
def test_only_the_genuine_tenant_issuer_matches_among_look_alikes(scheme, host, version, suffix, tenant, tid):
    """Issuers an attacker would send around the valid one: another host that ends or starts like Microsoft's,
    credentials in the authority, another port, scheme, tenant, version, a trailing piece. Only the one whose
    parts are the template's with the token's tid matches."""
    token_iss = f"{scheme}://{host}/{tenant}/{version}{suffix}"
    genuine = (scheme, host, version, suffix) == ("https", "login.microsoftonline.com", "v2.0", "") and \
        isinstance(tid, str) and tenant == tid and _is_uuid(tid)
    assert matches(token_iss, tid) is genuine


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False

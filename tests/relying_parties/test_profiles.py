"""Which registrations can hold the FAPI 2.0 profile (relying_parties.profiles): each rule of the FAPI 2.0 Security
Profile (final) an app's registration must meet names the member that breaks it; and the redirect URIs it
may use, property-based: https with a host, or http on a loopback IP, whatever an attacker writes around
them (userinfo, "localhost", look-alike hosts, private-use schemes, case, ports). No server."""
from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey, RSAKey

from relying_parties.models import OidcClient, PkceRule
from relying_parties.profiles import fapi2_redirect_uri, profile_problem
from oidc.core.redirects import redirect_uri_problem

EXAMPLES = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _jwks(*keys) -> str:
    return json.dumps({"keys": [key.as_dict(private=False) for key in keys]})


P256 = ECKey.generate_key("P-256", parameters={"kid": "p256"})
COMPLIANT = OidcClient(redirect_uris=("https://bank.example/cb", "http://127.0.0.1/native"), jwks=_jwks(P256),
                       id_token_alg="ES256", profile="fapi2")


def test_a_confidential_keyed_https_app_of_fapi_algorithms_holds_the_profile():
    assert profile_problem(COMPLIANT) is None
    assert profile_problem(dataclasses.replace(COMPLIANT, id_token_alg="EdDSA")) is None
    assert profile_problem(dataclasses.replace(COMPLIANT, jwks=None, jwks_uri="https://bank.example/jwks")) is None
    for key in (RSAKey.generate_key(2048), OKPKey.generate_key("Ed25519")):
        assert profile_problem(dataclasses.replace(COMPLIANT, jwks=_jwks(key))) is None
    assert profile_problem(dataclasses.replace(COMPLIANT, profile=None, public=True, jwks=None)) is None  # no profile
    # what the profile requires of every sign-in, it requires whatever the app's own flags say
    assert (COMPLIANT.par_required(), COMPLIANT.dpop_required(), COMPLIANT.rotates_refresh_tokens()) == \
        (True, True, False)
    assert COMPLIANT.pkce_rule(required_of_every_app=False) is PkceRule.FAPI2_PROFILE


@pytest.mark.parametrize("change, field", [
    ({"public": True, "jwks": None}, "public"),                                   # §5.3.2.1-3: confidential only
    ({"jwks": None}, "jwks"),                                                     # §5.3.2.1-6: private_key_jwt
    ({"registered_auth_method": "client_secret_basic"}, "token_endpoint_auth_method"),
    ({"jwks": _jwks(ECKey.generate_key("P-384"))}, "jwks"),                       # §5.4: no key of ES256/PS256/EdDSA
    ({"redirect_uris": ("http://bank.example/cb",)}, "redirect_uris"),            # §5.3.2.2-8
    ({"redirect_uris": ("http://localhost:3000/cb",)}, "redirect_uris"),          # RFC 8252 §8.3
    ({"redirect_uris": ("com.bank.app:/callback",)}, "redirect_uris"),            # RFC 8252 §8.6
    ({"redirect_uris": ()}, "redirect_uris"),
    ({"id_token_alg": "RS256"}, "id_token_alg"),                                  # §5.4-1
    ({"userinfo_signed_response_alg": "RS256"}, "userinfo_signed_response_alg"),
    ({"request_object_signing_alg": "none"}, "request_object_signing_alg"),
    ({"allow_unsigned_request_objects": True}, "allow_unsigned_request_objects"),
    ({"device_flow": True}, "device_flow"),
    ({"grant_types": ("authorization_code", "client_credentials")}, "grant_types"),
    ({"profile": "fapi1"}, "profile"),
])
def test_each_rule_an_app_cannot_meet_names_its_member(change, field):
    problem = profile_problem(dataclasses.replace(COMPLIANT, **change))
    assert problem is not None and problem.field == field
    assert problem.detail.startswith(f"{field}:")


def test_an_admin_role_keeps_an_app_from_the_profile():
    """The client-credentials grant's admin API tokens are Bearer tokens (§5.3.2.1-4: sender-constrained only)."""
    problem = profile_problem(COMPLIANT, admin_role="admin")
    assert problem is not None and problem.field == "admin_role"


# --- the redirect URIs a FAPI 2.0 app may register (§5.3.2.2-8), property-based ------------------------

HOSTS = ("bank.example", "127.0.0.1", "[::1]", "localhost", "127.0.0.2", "127.0.0.1.nip.io", "0.0.0.0",
         "[::ffff:127.0.0.1]", "xn--bnk-sna.example", "BANK.EXAMPLE")
SCHEMES = ("https", "http", "HTTPS", "HTTP", "com.bank.app", "javascript", "ftp")


@st.composite
def written_redirects(draw: st.DrawFn) -> str:
    """A redirect URI as an attacker may write one: any scheme of SCHEMES, a host of HOSTS, maybe userinfo
    naming another host, maybe a port, a path, a query, a fragment, or no authority at all."""
    scheme, host = draw(st.sampled_from(SCHEMES)), draw(st.sampled_from(HOSTS))
    # mostly what registration takes (the rule applies to those), now and then what it refuses
    userinfo = draw(st.sampled_from(("",) * 6 + ("127.0.0.1@", "bank.example@", "user:pw@")))
    port = draw(st.sampled_from(("", "", ":443", ":8080", ":0", ":99999", ":x")))
    path = draw(st.sampled_from(("/cb", "", "/a/../cb", "/%2e%2e/cb")))
    tail = draw(st.sampled_from(("", "", "?x=1", "?next=http://evil.example", "#frag")))
    authority = draw(st.sampled_from((True,) * 5 + (False,)))
    return f"{scheme}://{userinfo}{host}{port}{path}{tail}" if authority else f"{scheme}:{path or '/cb'}{tail}"


def _expected(uri: str) -> bool:
    """The rule, by another reading than the one under test: the registrable URI's scheme, and its host
    as the characters between "//" and the port or path."""
    scheme, _, rest = uri.partition(":")
    if not rest.startswith("//") or "@" in rest.split("/", 3)[2]:
        return False
    authority = rest[2:].split("/", 1)[0].split("?", 1)[0]
    host = authority.rsplit(":", 1)[0] if not authority.endswith("]") else authority
    if scheme.lower() == "https":
        return bool(host)
    return scheme.lower() == "http" and host in ("127.0.0.1", "[::1]")


@EXAMPLES
@given(written_redirects())
@example("http://127.0.0.1@bank.example/cb")
@example("http://bank.example@127.0.0.1/cb")
@example("http://127.0.0.1.nip.io/cb")
@example("http://localhost/cb")
@example("com.bank.app:/cb")
@example("https://bank.example/cb")
@example("http://[::1]:8080/cb")
def test_only_https_and_loopback_ip_redirects_take_a_fapi2_response(uri):
    if redirect_uri_problem(uri) is not None:
        return  # never registered at all: the profile's rule applies to registered URIs
    assert fapi2_redirect_uri(uri) is _expected(uri), uri
    if fapi2_redirect_uri(uri):
        problem = profile_problem(dataclasses.replace(COMPLIANT, redirect_uris=(uri,)))
        assert problem is None, (uri, problem)
    else:
        problem = profile_problem(dataclasses.replace(COMPLIANT, redirect_uris=(uri,)))
        assert problem is not None and problem.field == "redirect_uris", uri

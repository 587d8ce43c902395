"""What an operator set on an app that registered itself is the operator's (SPEC §14): the app's own RFC 7592
PUT keeps it where the PUT does not name it, and a PUT that asks to weaken it is refused (400
invalid_client_metadata naming the member) with nothing written. One test per field, at the HTTP level: the
operator acts through the admin API, the app through its registration_client_uri, and what holds is seen where
it matters (an authorization request, the device flow, the admin API's view of the app)."""
from __future__ import annotations

import json

import pytest
import requests
from joserfc.jwk import ECKey

from accounts.models import Role
from relying_parties import registration_tokens
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.operators import operator
from tests.support.waiting import wait_until
from tests.support.oidc import authorize_url, pkce_pair, query_of

# Real servers on sockets, many requests a test: the slow tier
pytestmark = pytest.mark.slow

REDIRECT = "https://rp.example/callback"
KEYS = {"keys": [ECKey.generate_key("P-256", parameters={"kid": "k1", "use": "sig"}).as_dict(private=False)]}
CODE_APP = {"redirect_uris": [REDIRECT], "client_name": "Rebus", "grant_types": ["authorization_code", "refresh_token"]}
KEYED_APP = {**CODE_APP, "token_endpoint_auth_method": "private_key_jwt", "jwks": KEYS,
             "id_token_signed_response_alg": "ES256", "request_object_signing_alg": "ES256"}
SCREEN_APP = {"client_name": "Rebus TV", "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}
BOTH_APP = {**CODE_APP, "grant_types": [*CODE_APP["grant_types"], *SCREEN_APP["grant_types"]]}


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    """One server for the module's apps, each registered with an initial access token of its own."""
    with app_servers(app_settings(dynamodb_endpoint, data_dir, table_prefix)) as start:
        yield start(host_name="127.0.0.1")


@pytest.fixture(scope="module")
def admin(server):
    url, ctx = server
    return operator(url, ctx, Role.ADMIN)


def _registered(server, metadata: dict) -> dict:
    url, ctx = server
    made = registration_tokens.make_token(ctx, uses=1)
    answer = requests.post(url + "/oidc/register", json=metadata, timeout=10,
                           headers={"Authorization": f"Bearer {made.token}"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _put(registration: dict, metadata: dict) -> requests.Response:
    return requests.put(registration["registration_client_uri"], timeout=10,
                        json={**metadata, "client_id": registration["client_id"]},
                        headers={"Authorization": f"Bearer {registration['registration_access_token']}"})


def _refused(answer: requests.Response, member: str) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_client_metadata"
    assert answer.json()["error_description"].startswith(f"{member}:"), answer.text


def _operator_sets(admin, client_id: str, **change) -> dict:
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json=change)
    assert changed.status_code == 200, changed.text
    return changed.json()


def _shown(admin, client_id: str) -> dict:
    return admin.get_json(f"/admin/apps/{client_id}")


def _plain_authorize(url: str, client_id: str, **extra: str) -> requests.Response:
    """An authorization request with no PAR and no PKCE: what the operator's rules refuse."""
    return requests.get(authorize_url(url, response_type="code", client_id=client_id, redirect_uri=REDIRECT,
                                      scope="openid", state="st", **extra), allow_redirects=False, timeout=10)


def _refused_at_authorize(url: str, client_id: str) -> str:
    """The error a plain authorization request gets back at the redirect URI, once every process reads the
    operator's change (the registry's period: a second)."""
    def refused() -> str | None:
        answer = _plain_authorize(url, client_id)
        location = answer.headers.get("Location", "")
        return query_of(location).get("error") if answer.status_code == 303 and location.startswith(REDIRECT) \
            else None
    return wait_until(refused, timeout=30, what="the plain authorization request refused")


def test_a_put_keeps_the_operators_fapi2_profile(server, admin):
    url, _ = server
    registration = _registered(server, KEYED_APP)
    client_id = registration["client_id"]
    assert _operator_sets(admin, client_id, profile="fapi2")["profile"] == "fapi2"

    assert _put(registration, {**KEYED_APP, "client_name": "Rebus 2"}).status_code == 200
    shown = _shown(admin, client_id)
    assert (shown["profile"], shown["name"], shown["operator_fields"]) == ("fapi2", "Rebus 2", ["profile"])
    assert _refused_at_authorize(url, client_id) == "invalid_request"  # PAR only, as before
    # the profile's rules hold the PUT too: no secret in place of its keys
    _refused(_put(registration, {**KEYED_APP, "token_endpoint_auth_method": "client_secret_basic"}),
             "token_endpoint_auth_method")
    assert _shown(admin, client_id)["token_endpoint_auth_method"] == "private_key_jwt"


def test_a_put_keeps_the_operators_pkce_requirement(server, admin):
    url, _ = server
    registration = _registered(server, CODE_APP)
    client_id = registration["client_id"]
    _operator_sets(admin, client_id, require_pkce=True)
    assert _put(registration, CODE_APP).status_code == 200
    assert _shown(admin, client_id)["require_pkce"] is True
    assert _refused_at_authorize(url, client_id) == "invalid_request"
    _, challenge = pkce_pair()
    asked = _plain_authorize(url, client_id, code_challenge=challenge, code_challenge_method="S256")
    assert asked.status_code == 303 and not asked.headers["Location"].startswith(REDIRECT), asked.text


@pytest.mark.parametrize(("field", "member"), [("require_par", "require_pushed_authorization_requests"),
                                               ("require_dpop", "dpop_bound_access_tokens")])
def test_a_put_keeps_the_operators_requirement_and_may_not_turn_it_off(server, admin, field, member):
    url, _ = server
    registration = _registered(server, CODE_APP)
    client_id = registration["client_id"]
    _operator_sets(admin, client_id, **{field: True})

    assert _put(registration, CODE_APP).status_code == 200  # not named: kept
    read = requests.get(registration["registration_client_uri"], timeout=10,
                        headers={"Authorization": f"Bearer {registration['registration_access_token']}"})
    assert read.json()[member] is True
    assert _put(registration, {**CODE_APP, member: True}).status_code == 200

    _refused(_put(registration, {**CODE_APP, member: False, "client_name": "Weaker"}), member)
    shown = _shown(admin, client_id)
    assert shown[member] is True and shown["name"] == "Rebus"  # nothing written
    if field == "require_par":
        assert _refused_at_authorize(url, client_id) == "invalid_request"


def test_an_app_may_turn_off_its_own_requirement_where_the_operator_set_none(server, admin):
    registration = _registered(server, {**CODE_APP, "require_pushed_authorization_requests": True})
    answer = _put(registration, {**CODE_APP, "require_pushed_authorization_requests": False})
    assert answer.status_code == 200 and answer.json()["require_pushed_authorization_requests"] is False


def test_a_put_keeps_the_device_flow_the_operator_withdrew_and_may_not_ask_for_it_again(server, admin):
    url, _ = server
    registration = _registered(server, BOTH_APP)
    client_id = registration["client_id"]
    _operator_sets(admin, client_id, device_flow=False)

    assert _put(registration, {"redirect_uris": [REDIRECT], "client_name": "Rebus"}).status_code == 200
    assert _shown(admin, client_id)["device_flow"] is False

    def refused() -> bool:  # every process reads the change within the registry's period
        asked = requests.post(url + "/oidc/device_authorization", data={"client_id": client_id, "scope": "openid"},
                              auth=(client_id, registration["client_secret"]), timeout=10)
        return asked.status_code in (400, 401) and asked.json()["error"] == "unauthorized_client"

    wait_until(refused, timeout=30)

    _refused(_put(registration, BOTH_APP), "grant_types")
    assert _shown(admin, client_id)["device_flow"] is False
    assert _put(registration, {**CODE_APP, "grant_types": ["authorization_code"]}).status_code == 200  # fewer: fine


@pytest.mark.parametrize(("metadata", "consent"), [(SCREEN_APP, True), (CODE_APP, False)])
def test_a_put_keeps_the_consent_the_operator_set(server, admin, metadata, consent):
    registration = _registered(server, metadata)
    client_id = registration["client_id"]
    assert _shown(admin, client_id)["consent"] is not consent  # what the registration gave
    _operator_sets(admin, client_id, consent=consent)
    assert _put(registration, {**metadata, "client_name": "Renamed"}).status_code == 200
    shown = _shown(admin, client_id)
    assert (shown["consent"], shown["name"]) == (consent, "Renamed")


def test_a_put_keeps_the_operators_role(server, admin):
    registration = _registered(server, CODE_APP)
    client_id = registration["client_id"]
    _operator_sets(admin, client_id, admin_role="support")
    assert _put(registration, CODE_APP).status_code == 200
    assert _shown(admin, client_id)["admin_role"] == "support"


def test_an_operators_change_between_the_puts_reading_and_its_write_is_never_lost(server):
    """The PUT is written only if the app is as it was read (its revision): a stale change is refused."""
    _, ctx = server
    registration = _registered(server, CODE_APP)
    client_id = registration["client_id"]
    read = apps.show_app(ctx, client_id=client_id)
    apps.update_app(ctx, client_id=client_id, oidc=OidcClient(**{**read.oidc().__dict__, "require_par": True}),
                    set_by_operator=frozenset({"require_par"}))
    with pytest.raises(apps.AppChangedMeanwhile):
        apps.update_app(ctx, client_id=client_id, name="Stale", oidc=read.oidc(), changed=frozenset({"name"}),
                        revision=read.revision or 0)
    after = apps.show_app(ctx, client_id=client_id)
    assert after.oidc().require_par and after.name == "Rebus"
    assert json.loads(json.dumps(after.operator_fields)) == ["require_par"]

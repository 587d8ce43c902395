"""An app that registered itself cannot pass for the service or for an operator's app (SPEC §14): its name may
not read as theirs (common.lookalikes) at registration or in its own update, and the person's approval and
consent pages are told it registered itself (`registered_itself`) until an operator marks it verified."""
from __future__ import annotations

import pytest
import requests

from accounts.models import Role
from relying_parties import registration_tokens
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.oidc import authorize_url, http_of, pkce_pair, sign_in_page_request
from tests.support.operators import operator
from tests.support.waiting import wait_until

# Real servers on sockets: the slow tier
pytestmark = pytest.mark.slow

REDIRECT = "https://rp.example/callback"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    with app_servers(app_settings(dynamodb_endpoint, data_dir, table_prefix)) as start:
        url, ctx = start(host_name="127.0.0.1")
        apps.add_app(ctx, name="Living-room TV player", push_url=None,
                     oidc=OidcClient(device_flow=True, public=True))
        yield url, ctx


def _register(server, metadata: dict) -> requests.Response:
    url, ctx = server
    made = registration_tokens.make_token(ctx, uses=1)
    return requests.post(url + "/oidc/register", json=metadata, timeout=10,
                         headers={"Authorization": f"Bearer {made.token}"})


def _refused_name(answer: requests.Response) -> None:
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid_client_metadata"
    assert answer.json()["error_description"].startswith("client_name:"), answer.text


@pytest.mark.parametrize("name", ["citylogin", "CityLogin", "ＣＩＴＹＬＯＧＩＮ", "city-login", "сitylogin",
                                  "cityIogin",
                                  "Living-room TV player", "LIVING ROOM TV PLAYER", "Living-rооm TV player"])
def test_a_registration_may_not_take_a_name_that_reads_as_the_services_or_an_operator_apps(server, name):
    _refused_name(_register(server, {"client_name": name, "grant_types": [DEVICE_GRANT],
                                     "token_endpoint_auth_method": "none"}))


def test_nor_may_its_own_update_and_an_unrelated_name_is_its_own(server):
    registered = _register(server, {"client_name": "Rebus", "redirect_uris": [REDIRECT]})
    assert registered.status_code == 201, registered.text
    registration = registered.json()

    def put(name: str) -> requests.Response:
        return requests.put(registration["registration_client_uri"], timeout=10,
                            json={"client_id": registration["client_id"], "client_name": name,
                                  "redirect_uris": [REDIRECT]},
                            headers={"Authorization": f"Bearer {registration['registration_access_token']}"})

    _refused_name(put("Citylogin"))
    assert put("Rebus notes").json()["client_name"] == "Rebus notes"
    assert put("Rebus notes").status_code == 200  # its own name, again


def test_the_pages_are_told_an_app_registered_itself_until_an_operator_verifies_it(server):
    url, ctx = server
    registration = _register(server, {"client_name": "Rebus TV", "grant_types": [DEVICE_GRANT, "authorization_code"],
                                      "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}).json()
    client_id = registration["client_id"]

    def looked_up() -> dict:
        started = requests.post(url + "/oidc/device_authorization", data={"client_id": client_id, "scope": "openid"},
                                timeout=10)
        assert started.status_code == 200, started.text
        return requests.post(url + "/oidc/device/lookup", json={"user_code": started.json()["user_code"]},
                             timeout=10).json()

    admin = operator(url, ctx, Role.ADMIN)
    assert looked_up()["registered_itself"] is True
    assert _interaction(url, admin, client_id)["registered_itself"] is True

    verified = admin.request("PATCH", f"/admin/apps/{client_id}", json={"verified": True})
    assert verified.status_code == 200 and verified.json()["verified"] is True, verified.text
    # every host reads the change within the registry's cache period (relying_parties.service.CACHE_SECONDS)
    wait_until(lambda: looked_up()["registered_itself"] is False, timeout=30)
    assert _interaction(url, admin, client_id)["registered_itself"] is False

    operators_app = next(app for app in apps.list_apps(ctx) if app.name == "Living-room TV player")
    assert not operators_app.registered_itself()  # an operator's own app never is


def _interaction(url: str, browser, client_id: str) -> dict:
    """What the sign-in page reads of an authorization request of `client_id`."""
    _, challenge = pkce_pair()
    request_id = sign_in_page_request(authorize_url(url, response_type="code", client_id=client_id,
                                                    redirect_uri=REDIRECT, scope="openid", state="st",
                                                    code_challenge=challenge, code_challenge_method="S256"),
                                      browser=browser)
    answer = http_of(browser).post(f"{url}/oidc/interaction", json={"request": request_id}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()

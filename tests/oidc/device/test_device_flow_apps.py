"""Which apps the provider knows as clients of the device authorization grant (RFC 8628, SPEC §14): an
app added with --device-flow is a client without a redirect URI, may ask for the device_code grant and
refresh its screens' tokens; any other app is refused the grant, and an app for events alone is no client."""
from __future__ import annotations

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import AppRecord
from oidc.core.models import Client

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANTS = ("authorization_code", "refresh_token", DEVICE_CODE, "client_credentials")


def _client(**fields) -> Client:
    return Client(app=AppRecord(client_id="app_x", name="x", secret_digest="d", created_at="2025-01-01T00:00:00Z",
                                created_epoch=1735689600, **fields))


@pytest.mark.parametrize("fields, allowed", [
    ({"redirect_uris": ["https://a.example/cb"]}, {"authorization_code", "refresh_token"}),
    ({"device_flow": True}, {"refresh_token", DEVICE_CODE}),
    ({"device_flow": True, "public_client": True}, {"refresh_token", DEVICE_CODE}),
    ({"device_flow": True, "redirect_uris": ["https://a.example/cb"]}, {"authorization_code", "refresh_token",
                                                                        DEVICE_CODE}),
    ({"device_flow": False, "device_class": "mobile"}, set()),
    ({}, set()),
    ({"admin_role": "viewer"}, {"client_credentials"}),
], ids=["redirect", "device_flow", "public_device_flow", "both", "class_alone", "events_only", "automation"])
def test_each_app_is_allowed_the_grants_it_was_added_with(fields, allowed):
    client = _client(**fields)
    assert {grant for grant in GRANTS if client.check_grant_type(grant)} == allowed


def test_a_device_flow_app_without_a_redirect_uri_is_a_client_at_the_token_endpoint(make_server):
    """Before its screens get tokens, the token endpoint already knows the app: a refresh token it did not
    issue is an invalid_grant (400), where an app for events alone stays an invalid_client (401)."""
    url, ctx = make_server()
    from relying_parties.models import OidcClient
    screen = apps.add_app(ctx, name="TV", push_url=None, oidc=OidcClient(device_flow=True))
    cli = apps.add_app(ctx, name="CLI", push_url=None, oidc=OidcClient(device_flow=True, public=True))
    events = apps.add_app(ctx, name="Events", push_url=None)
    form = {"grant_type": "refresh_token", "refresh_token": "not-one-of-ours"}

    answer = requests.post(url + "/oidc/token", data=form, auth=(screen.app.client_id, screen.client_secret),
                           timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant"), answer.text
    answer = requests.post(url + "/oidc/token", data={**form, "client_id": cli.app.client_id}, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant"), answer.text
    answer = requests.post(url + "/oidc/token", data=form, auth=(events.app.client_id, events.client_secret),
                           timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), answer.text

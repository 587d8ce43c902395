"""Managing one's own devices: list, rename, force logout, unbind (SPEC §4)."""
from __future__ import annotations

import uuid

import pytest
import requests

from citylogin.client.api import CityloginError, Client
from tests.support.live import PASSWORD, register_device


def paired_pair(url):
    """Device 1 registered and logged in; device 2 paired by QR; policy lets both be active."""
    first = register_device(url)
    first.login(PASSWORD)
    second = Client(url)
    second.pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD,
                device_name="phone")
    return first, second


def problem(response):
    body = response.json()
    return response.status_code, body["code"], body.get("reason")


def test_list_rename_and_scope(make_server):
    url, _ = make_server(max_concurrent_devices=2)
    first, second = paired_pair(url)
    second.login(PASSWORD)
    devices = first.get_json("/device/list")["devices"]
    assert [(d["device_name"], d["is_primary"], d["current"], d["active"], d["status"]) for d in devices] == [
        ("First device", True, True, True, "active"), ("phone", False, False, True, "active")]
    renamed = first.request("PATCH", f"/device/{second.key_file.device_id}", json={"device_name": "work phone"})
    assert renamed.status_code == 200
    assert first.get_json("/device/list")["devices"][1]["device_name"] == "work phone"
    stranger = register_device(url)
    stranger.login(PASSWORD)
    for method, path, body in [("PATCH", f"/device/{second.key_file.device_id}", {"device_name": "x"}),
                               ("POST", "/device/force_logout", {"device_id": second.key_file.device_id}),
                               ("POST", "/device/unbind", {"device_id": second.key_file.device_id}),
                               ("PATCH", f"/device/{uuid.uuid4()}", {"device_name": "x"})]:
        response = stranger.request(method, path, json=body)
        assert problem(response)[:2] == (404, "device_not_found"), path
    # Device ids are UUIDs: anything else matches no route and never reaches a store.
    assert problem(stranger.request("PATCH", "/device/%23registered", json={"device_name": "x"}))[:2] == \
        (404, "not_found")
    assert second.request("GET", "/session/me").status_code == 200


def test_force_logout_ends_the_other_devices_session(make_server):
    url, _ = make_server(max_concurrent_devices=2)
    first, second = paired_pair(url)
    second.login(PASSWORD)
    response = first.request("POST", "/device/force_logout", json={"device_id": second.key_file.device_id})
    assert response.json() == {"device_id": second.key_file.device_id, "logged_out": True}
    assert problem(second.request("GET", "/session/me")) == (401, "session_revoked", "remote_logout")
    second.login(PASSWORD)  # it may log in again: force logout is not unbinding


def test_unbind_revokes_the_certificate_and_the_session(make_server):
    url, _ = make_server(max_concurrent_devices=2)
    first, second = paired_pair(url)
    second.login(PASSWORD)
    refresh_token = second.refresh_token
    assert first.request("POST", "/device/unbind", json={"device_id": second.key_file.device_id}).status_code == 200
    assert problem(second.request("GET", "/session/me")) == (401, "session_revoked", "device_unbound")
    refreshed = requests.post(url + "/session/refresh", json={"refresh_token": refresh_token}, timeout=10,
                              headers={"DPoP": second.proof("POST", url + "/session/refresh")})
    assert problem(refreshed) == (401, "session_revoked", "device_unbound")
    with pytest.raises(CityloginError) as refused:
        second.login(PASSWORD)
    assert (refused.value.status, refused.value.code) == (403, "device_revoked")
    listed = {d["device_id"]: d["status"] for d in first.get_json("/device/list")["devices"]}
    assert listed[second.key_file.device_id] == "revoked"


def test_unbinding_the_last_device_needs_confirm_last(make_server):
    url, _ = make_server()
    only = register_device(url)
    only.login(PASSWORD)
    refused = only.request("POST", "/device/unbind", json={"device_id": only.key_file.device_id})
    assert problem(refused)[:2] == (409, "last_device")
    assert only.request("GET", "/session/me").status_code == 200
    done = only.request("POST", "/device/unbind", json={"device_id": only.key_file.device_id, "confirm_last": True})
    assert done.status_code == 200
    assert problem(only.request("GET", "/session/me")) == (401, "session_revoked", "device_unbound")


def test_unbinding_frees_a_slot_for_a_new_device(make_server):
    url, _ = make_server(max_registered_devices=2)
    first, second = paired_pair(url)
    with pytest.raises(CityloginError) as full:
        Client(url).pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)
    assert full.value.code == "device_limit_reached"
    first.request("POST", "/device/unbind", json={"device_id": second.key_file.device_id})
    Client(url).pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)


def test_ca_pem_is_served(make_server):
    url, ctx = make_server()
    response = requests.get(url + "/device/ca.pem", timeout=10)
    assert response.text == ctx.ca.certificate_pem()

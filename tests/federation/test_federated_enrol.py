"""The first device with a provider's answer (SPEC §16, §17): an imported account whose upstream identity is
linked and that has no device sets up its first device with POST /federation/enrol (the ticket in the place of
the password and the mailed code), then signs in with it (POST /federation/login); an account with a device is
409 device_exists; a password enrol racing it never makes two first devices. Over HTTP on DynamoDB Local."""
from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from common.database.guarded_write import write_all
from common.timefmt import iso
from accounts import user_service as users
from federation import identities, tickets
from tests.flows.test_device_enrol import CODE, Imported, Recorder, imported_account
from tests.support.federation_flows import (_new_device, at_once, federation_app, identity, post, proof, provider,
                                            ticket)
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device, settle_background
from devices import service as devices


@pytest.fixture
def served(base_config):
    with federation_app(base_config, max_concurrent_devices=0) as (url, ctx):
        ctx.notifier.backend = Recorder()
        yield url, ctx


def linked(ctx, account: Imported):
    """The account's upstream identity, linked as an import links it."""
    who = identity(provider(ctx))
    user = users.get_user(ctx, user_uuid=account.user_uuid)
    write_all(ctx.dynamodb, identities.link_writes(ctx, user=user, identity=who, linked_at=iso(ctx.now())))
    return who


def enrol(url: str, value: str | None, *, username: str = ""):
    return _new_device(url, "/federation/enrol", {"device_name": "Laptop", "device_class": "desktop"},
                       ticket_value=value, username=username)


def active(ctx, user_uuid: str) -> list[str]:
    return [d.device_id for d in devices.device_store(ctx).list_for_user(user_uuid) if d.status == "active"]


def test_the_first_device_with_the_providers_answer_then_signs_in(served):
    url, ctx = served
    account = imported_account(ctx)
    value = ticket(ctx, linked(ctx, account))
    made, laptop = enrol(url, value, username=account.username)
    assert made.status_code == 201, made.text
    assert made.json()["uuid"] == account.user_uuid and active(ctx, account.user_uuid) == [laptop.key_file.device_id]
    assert tickets.read_ticket(ctx.dynamodb, ctx.tables, value=value, now=ctx.epoch()).stage == "enrolled"
    signed = post(url, "/federation/login", proof(laptop), ticket_value=value)
    assert signed.status_code == 200 and signed.json()["device_id"] == laptop.key_file.device_id
    settle_background(ctx)
    assert "device_enrolled" in [m.event for m in ctx.notifier.backend.messages]
    assert problem(enrol(url, ticket(ctx, linked(ctx, account)))[0])[:2] == (409, "device_exists")


def test_refusals(served):
    url, ctx = served
    assert problem(enrol(url, None)[0])[:2] == (401, "federation_ticket_invalid")
    assert problem(enrol(url, ticket(ctx, identity(provider(ctx))))[0])[:2] == (404, "identity_not_found")
    account = imported_account(ctx)
    value = ticket(ctx, linked(ctx, account))
    assert enrol(url, value)[0].status_code == 201
    assert problem(enrol(url, value)[0])[:2] == (401, "federation_ticket_invalid")  # enrolled: good for a sign-in
    registered = register_device(url).require_key_file()
    with_device = Imported(user_uuid=registered.user_uuid, username=registered.username, email="")
    assert problem(enrol(url, ticket(ctx, linked(ctx, with_device)))[0])[:2] == (409, "device_exists")


def test_a_password_enrol_racing_a_provider_enrol_makes_one_first_device(served):
    url, ctx = served
    for _ in range(3):
        account = imported_account(ctx)
        answers = at_once([by_provider(url, ticket(ctx, linked(ctx, account))), by_password(url, ctx, account)])
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        assert len(active(ctx, account.user_uuid)) == 1


def by_provider(url: str, value: str) -> Callable[[], requests.Response]:
    return lambda: enrol(url, value)[0]


def by_password(url: str, ctx, account: Imported) -> Callable[[], requests.Response]:
    """POST /device/enrol with the password and the code mailed for it, ready to go."""
    requests.post(url + "/device/enrol/code", json={"username": account.username}, timeout=30)
    settle_background(ctx)
    code = CODE.search([m for m in ctx.notifier.backend.messages if m.event == "enrol_code"
                        and m.email == account.email][-1].body).group(1)
    body = {"username": account.username, "password": PASSWORD, "email_code": code}
    return lambda: requests.post(url + "/device/enrol", json=body, timeout=60)


def test_provider_enrols_racing_with_several_linked_identities_make_one_first_device(served):
    url, ctx = served
    account = imported_account(ctx)
    values = [ticket(ctx, linked(ctx, account)) for _ in range(4)]
    answers = at_once([by_provider(url, value) for value in values])
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert len(active(ctx, account.user_uuid)) == 1

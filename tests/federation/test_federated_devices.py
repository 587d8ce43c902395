"""An account made with a provider has no password, yet gets further devices and gets back in after losing every
device (SPEC §16, §4): POST /federation/pair and /federation/recover take the provider's answer (the ticket) in
the password's place and nothing else changes: the pairing code must be the account's, single use, the device
limit holds, a wrong recovery code counts toward the lockout, a code is used once under a race, the ticket is
used once; then the browser signs in with the new device (POST /federation/login). Over HTTP on DynamoDB Local."""
from __future__ import annotations


import pytest
import requests

from devices import pairing_service
from devices import service as devices
from federation import tickets
from tests.support.federation_flows import (at_once, federation_app, identity, pair, post, proof, provider, recover,
                                            sign_up, ticket)
from tests.support.fixtures import problem
from tests.support.live import FakeClock, register_device

RACERS = 4


@pytest.fixture
def served(base_config):
    with federation_app(base_config, max_concurrent_devices=0) as (url, ctx):
        yield url, ctx


def made_with_provider(url, ctx, **provider_settings):
    """An account made with a provider (no password): its identity, its first device, its recovery codes."""
    who = identity(provider(ctx, **provider_settings))
    made, first = sign_up(url, ticket(ctx, who))
    assert made.status_code == 201, made.text
    return who, first, made.json()["recovery_codes"]


def pairing_code(ctx, device) -> str:
    """The pairing link one of the account's devices shows (as POST /registration/request_pairing_token gives)."""
    return pairing_service.request_pairing_token(ctx, user_uuid=device.key_file.user_uuid,
                                                 device_id=device.key_file.device_id)["qr_code"]


def active_devices(ctx, user_uuid: str) -> list[str]:
    return sorted(d.device_id for d in devices.device_store(ctx).list_for_user(user_uuid) if d.status == "active")


def token_statuses(ctx, user_uuid: str) -> list[str]:
    return sorted(item["status"] for item in pairing_service.pairing_store(ctx).items_of_user(user_uuid))


def stage(ctx, value: str) -> str:
    return tickets.read_ticket(ctx.dynamodb, ctx.tables, value=value, now=ctx.epoch()).stage



def test_a_further_device_pairs_with_the_providers_answer_then_signs_in(served):
    url, ctx = served
    who, first, _ = made_with_provider(url, ctx)
    value = ticket(ctx, who)
    paired, phone = pair(url, value, pairing_code(ctx, first))
    assert paired.status_code == 201, paired.text
    assert paired.json()["uuid"] == first.key_file.user_uuid and "recovery_codes" not in paired.json()
    assert active_devices(ctx, first.key_file.user_uuid) == sorted([first.key_file.device_id,
                                                                     phone.key_file.device_id])
    assert token_statuses(ctx, first.key_file.user_uuid) == ["used"]
    signed = post(url, "/federation/login", proof(phone), ticket_value=value)
    assert signed.status_code == 200, signed.text
    assert signed.json()["device_id"] == phone.key_file.device_id
    # the ticket was good for that one sign-in, and only with the paired device
    assert problem(post(url, "/federation/login", proof(phone), ticket_value=value))[:2] == \
        (401, "federation_ticket_invalid")
    other = ticket(ctx, who)
    assert pair(url, other, pairing_code(ctx, first))[0].status_code == 201
    assert problem(post(url, "/federation/login", proof(first), ticket_value=other))[:2] == \
        (401, "certificate_mismatch")


def test_a_paired_device_meets_the_in_use_question_over_the_limit(base_config):
    with federation_app(base_config, max_concurrent_devices=1) as (url, ctx):
        who, first, _ = made_with_provider(url, ctx)
        assert post(url, "/federation/login", proof(first), ticket_value=ticket(ctx, who)).status_code == 200
        value = ticket(ctx, who)
        _, phone = pair(url, value, pairing_code(ctx, first))
        asked = post(url, "/federation/login", proof(phone), ticket_value=value)
        assert problem(asked)[:2] == (409, "concurrent_login")
        assert [d["device_id"] for d in asked.json()["active_devices"]] == [first.key_file.device_id]


def test_the_device_limit_holds_and_a_refused_pairing_spends_nothing(base_config):
    with federation_app(base_config, max_registered_devices=2) as (url, ctx):
        who, first, _ = made_with_provider(url, ctx)
        assert pair(url, ticket(ctx, who), pairing_code(ctx, first))[0].status_code == 201
        value, code = ticket(ctx, who), pairing_code(ctx, first)
        before = active_devices(ctx, first.key_file.user_uuid)
        assert problem(pair(url, value, code)[0])[:2] == (409, "device_limit_reached")
        assert active_devices(ctx, first.key_file.user_uuid) == before
        assert token_statuses(ctx, first.key_file.user_uuid) == ["unused", "used"] and stage(ctx, value) == "fresh"


def test_another_accounts_pairing_code_is_refused_and_nothing_is_written(served):
    url, ctx = served
    who, first, _ = made_with_provider(url, ctx)
    stranger = register_device(url)
    value = ticket(ctx, who)
    refused, _ = pair(url, value, pairing_code(ctx, stranger))
    assert problem(refused)[:2] == (403, "pairing_user_mismatch")
    assert active_devices(ctx, stranger.key_file.user_uuid) == [stranger.key_file.device_id]
    assert active_devices(ctx, first.key_file.user_uuid) == [first.key_file.device_id]
    assert token_statuses(ctx, stranger.key_file.user_uuid) == ["unused"] and stage(ctx, value) == "fresh"


def test_a_used_or_expired_pairing_code_is_refused(served):
    url, ctx = served
    ctx.clock = clock = FakeClock()
    who, first, _ = made_with_provider(url, ctx)
    used = pairing_code(ctx, first)
    assert pair(url, ticket(ctx, who), used)[0].status_code == 201
    assert problem(pair(url, ticket(ctx, who), used)[0])[:2] == (410, "pairing_token_used")
    expired = pairing_code(ctx, first)
    clock.advance(ctx.settings.pairing_token_ttl + 1)
    assert problem(pair(url, ticket(ctx, who), expired)[0])[:2] == (410, "pairing_token_expired")
    assert len(active_devices(ctx, first.key_file.user_uuid)) == 2


def test_pairings_racing_with_one_ticket_make_one_device(served):
    url, ctx = served
    who, first, _ = made_with_provider(url, ctx)
    value = ticket(ctx, who)
    codes = [pairing_code(ctx, first) for _ in range(RACERS)]
    answers = at_once([lambda code=code: pair(url, value, code)[0] for code in codes])
    assert sorted(a.status_code for a in answers) == [201] + [401] * (RACERS - 1), [a.text for a in answers]
    assert {problem(a)[1] for a in answers if a.status_code != 201} == {"federation_ticket_invalid"}
    assert len(active_devices(ctx, first.key_file.user_uuid)) == 2
    assert token_statuses(ctx, first.key_file.user_uuid).count("used") == 1


def test_recover_with_the_providers_answer_then_sign_in(served):
    url, ctx = served
    who, first, codes = made_with_provider(url, ctx)
    value = ticket(ctx, who)
    recovered, found = recover(url, value, codes[0], unbind_other_devices=True)
    assert recovered.status_code == 201, recovered.text
    assert active_devices(ctx, first.key_file.user_uuid) == [found.key_file.device_id]
    signed = post(url, "/federation/login", proof(found), ticket_value=value)
    assert signed.status_code == 200, signed.text
    assert signed.json()["device_id"] == found.key_file.device_id
    # the code was used up; the lost device can sign in no more
    assert problem(recover(url, ticket(ctx, who), codes[0])[0])[:2] == (401, "invalid_recovery_code")
    assert problem(post(url, "/federation/login", proof(first), ticket_value=ticket(ctx, who)))[:2] == \
        (403, "device_revoked")


def test_wrong_recovery_codes_count_toward_the_lockout(base_config):
    with federation_app(base_config, login_max_failures=2) as (url, ctx):
        who, first, codes = made_with_provider(url, ctx)
        value = ticket(ctx, who)
        for _ in range(2):
            assert problem(recover(url, value, "aaaa-bbbb-cccc")[0])[:2] == (401, "invalid_recovery_code")
        assert stage(ctx, value) == "fresh"  # a refused code spent no ticket
        locked = recover(url, value, codes[0])[0]
        assert problem(locked)[:2] == (429, "too_many_attempts") and int(locked.headers["Retry-After"]) > 0
        assert active_devices(ctx, first.key_file.user_uuid) == [first.key_file.device_id]


def test_one_recovery_code_racing_makes_one_device(served):
    url, ctx = served
    who, first, codes = made_with_provider(url, ctx)
    values = [ticket(ctx, who) for _ in range(RACERS)]
    answers = at_once([lambda value=value: recover(url, value, codes[1])[0] for value in values])
    assert sorted(a.status_code for a in answers) == [201] + [401] * (RACERS - 1), [a.text for a in answers]
    assert {problem(a)[1] for a in answers if a.status_code != 201} == {"invalid_recovery_code"}
    assert len(active_devices(ctx, first.key_file.user_uuid)) == 2


def test_a_recovery_racing_with_one_ticket_makes_one_device(served):
    url, ctx = served
    who, first, codes = made_with_provider(url, ctx)
    value = ticket(ctx, who)
    answers = at_once([lambda code=code: recover(url, value, code)[0] for code in codes[:RACERS]])
    assert sorted(a.status_code for a in answers) == [201] + [401] * (RACERS - 1), [a.text for a in answers]
    assert {problem(a)[1] for a in answers if a.status_code != 201} == {"federation_ticket_invalid"}
    assert len(active_devices(ctx, first.key_file.user_uuid)) == 2


def test_an_unlinked_identity_and_a_missing_ticket_get_nothing(served):
    url, ctx = served
    who, first, codes = made_with_provider(url, ctx)
    unlinked = ticket(ctx, identity(who.provider))
    assert problem(pair(url, unlinked, pairing_code(ctx, first))[0])[:2] == (404, "identity_not_found")
    assert problem(recover(url, unlinked, codes[0])[0])[:2] == (404, "identity_not_found")
    for value in ("forged", None):
        assert problem(pair(url, value, pairing_code(ctx, first))[0])[:2] == (401, "federation_ticket_invalid")
        assert problem(recover(url, value, codes[0])[0])[:2] == (401, "federation_ticket_invalid")
    assert problem(pair(url, ticket(ctx, who), "not a pairing code")[0])[:2] == (400, "invalid_qr")
    assert active_devices(ctx, first.key_file.user_uuid) == [first.key_file.device_id]


@pytest.mark.parametrize("path", ["/federation/pair", "/federation/recover"])
def test_bad_bodies_are_problems_with_a_code(served, path):
    url, ctx = served
    who, _, _ = made_with_provider(url, ctx)
    for body in ("not json", [1, 2], {}, {"qr_code": 7, "recovery_code": ["x"], "device_class": "fridge"},
                 {"qr_code": "x" * 5000, "recovery_code": "x" * 100}):
        answer = requests.post(url + path, data=body if isinstance(body, str) else None,
                               json=None if isinstance(body, str) else body, timeout=30,
                               cookies={tickets.COOKIE: ticket(ctx, who)}, headers={"Content-Type": "application/json"})
        status, code, _ = problem(answer)
        assert status == 400 and code, (path, body, answer.text)

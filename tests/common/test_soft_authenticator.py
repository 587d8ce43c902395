"""The software authenticator of the passkey tests, checked against py_webauthn itself: what it creates and
asserts verifies, and each of its knobs makes py_webauthn refuse the assertion it produces."""
from __future__ import annotations

import json

import pytest
import webauthn
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, CredentialDeviceType,
                                      PublicKeyCredentialDescriptor, ResidentKeyRequirement,
                                      UserVerificationRequirement)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tests.support.soft_authenticator import SoftAuthenticator, from_b64url

ORIGIN = "http://localhost:8080"
RP_ID = "localhost"
USER_ID = bytes(range(16))


def creation_options() -> tuple[dict, bytes]:
    """Creation options as the server sends them (options_to_json, parsed), and their challenge."""
    options = webauthn.generate_registration_options(
        rp_id=RP_ID, rp_name="citylogin", user_name="ada", user_id=USER_ID,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.REQUIRED))
    return json.loads(webauthn.options_to_json(options)), options.challenge


def request_options(*allowed: str) -> tuple[dict, bytes]:
    """Request options allowing the given credentials (none: discoverable), and their challenge."""
    options = webauthn.generate_authentication_options(
        rp_id=RP_ID, user_verification=UserVerificationRequirement.REQUIRED,
        allow_credentials=[PublicKeyCredentialDescriptor(id=from_b64url(cid)) for cid in allowed])
    return json.loads(webauthn.options_to_json(options)), options.challenge


def register(authenticator: SoftAuthenticator) -> tuple[str, VerifiedRegistration]:
    """Creates a passkey and has py_webauthn verify it; returns its id and the verified registration."""
    options, challenge = creation_options()
    credential = authenticator.create(options)
    verified = webauthn.verify_registration_response(
        credential=credential, expected_challenge=challenge, expected_rp_id=RP_ID, expected_origin=ORIGIN,
        require_user_verification=True)
    return credential["id"], verified


def verify_assertion(assertion: dict, challenge: bytes, public_key: bytes, current_count: int):
    """py_webauthn's verdict on an assertion, user verification required as citylogin requires it."""
    return webauthn.verify_authentication_response(
        credential=assertion, expected_challenge=challenge, expected_rp_id=RP_ID, expected_origin=ORIGIN,
        credential_public_key=public_key, credential_current_sign_count=current_count,
        require_user_verification=True)


def test_a_created_passkey_verifies_in_the_browser_json_shape():
    authenticator = SoftAuthenticator(ORIGIN)
    credential_id, verified = register(authenticator)
    assert verified.credential_id == from_b64url(credential_id)
    assert verified.sign_count == 0 and verified.fmt == "none" and verified.user_verified
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE and not verified.credential_backed_up
    assert authenticator.credentials[credential_id].user_handle == USER_ID


def test_backup_flags_reach_the_verified_registration():
    _, verified = register(SoftAuthenticator(ORIGIN, backup_eligible=True, backed_up=True))
    assert verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE and verified.credential_backed_up


def test_assertions_verify_and_carry_the_advancing_counter():
    authenticator = SoftAuthenticator(ORIGIN, counter_step=3)
    credential_id, verified = register(authenticator)
    previous = 0
    for expected in (3, 6):
        options, challenge = request_options(credential_id)
        assertion = authenticator.get(options)
        result = verify_assertion(assertion, challenge, verified.credential_public_key, previous)
        assert result.new_sign_count == expected == authenticator.credentials[credential_id].sign_count
        assert from_b64url(assertion["response"]["userHandle"]) == USER_ID
        previous = result.new_sign_count


def test_a_discoverable_request_gets_the_one_passkey_for_the_rp_and_user_handle_can_be_left_out():
    authenticator = SoftAuthenticator(ORIGIN)
    credential_id, verified = register(authenticator)
    options, challenge = request_options()
    assertion = authenticator.get(options, user_handle=False)
    assert assertion["id"] == credential_id and "userHandle" not in assertion["response"]
    assert verify_assertion(assertion, challenge, verified.credential_public_key, 0).new_sign_count == 1


def test_the_first_allowed_credential_held_is_picked_unless_one_is_named():
    authenticator = SoftAuthenticator(ORIGIN)
    first, _ = register(authenticator)
    second, _ = register(authenticator)
    options, _ = request_options("AAAA", second, first)
    assert authenticator.get(options)["id"] == second
    assert authenticator.get(options, credential_id=first)["id"] == first
    with pytest.raises(LookupError):
        authenticator.get(request_options()[0])


# Each knob, and the refusal it must draw from py_webauthn.
KNOBS = {
    "wrong origin": (lambda authenticator, _: setattr(authenticator, "origin", "http://evil.example"),
                     "client data origin"),
    "wrong rp id": (lambda authenticator, _: setattr(authenticator, "rp_id", "evil.example"), "RP ID hash"),
    "no user verification": (lambda authenticator, _: setattr(authenticator, "user_verified", False),
                             "User verification is required"),
    "counter set back": (lambda authenticator, credential_id: authenticator.set_counter(credential_id, 5),
                         "sign count of 6 was not greater than current count of 11"),
    "counter standing still": (lambda authenticator, _: setattr(authenticator, "counter_step", 0),
                               "sign count of 11 was not greater than current count of 11"),
}


@pytest.mark.parametrize("knob", KNOBS)
def test_each_knob_makes_py_webauthn_refuse_the_assertion(knob):
    authenticator = SoftAuthenticator(ORIGIN)
    credential_id, verified = register(authenticator)
    authenticator.set_counter(credential_id, 10)
    options, challenge = request_options(credential_id)
    count = verify_assertion(authenticator.get(options), challenge, verified.credential_public_key, 0).new_sign_count
    assert count == 11
    change, refusal = KNOBS[knob]
    change(authenticator, credential_id)
    options, challenge = request_options(credential_id)
    with pytest.raises(InvalidAuthenticationResponse, match=refusal):
        verify_assertion(authenticator.get(options), challenge, verified.credential_public_key, count)


def test_registration_without_user_verification_is_refused():
    options, challenge = creation_options()
    credential = SoftAuthenticator(ORIGIN, user_verified=False).create(options)
    with pytest.raises(InvalidRegistrationResponse, match="User verification is required"):
        webauthn.verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=RP_ID, expected_origin=ORIGIN,
            require_user_verification=True)

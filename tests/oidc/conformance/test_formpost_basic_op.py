"""The OpenID Foundation's Form Post OP certification plan (oidcc-formpost-basic-certification-test-plan):
the Basic OP plan's modules, each with response_mode=form_post (the suite's AbstractFormPostTestPlan
changes only the response mode). The authorization response comes to the app's server as a POST of a
form, which the browser really sends from citylogin's auto-submitting page; each module then checks
CheckCallbackHttpMethodIsPost, CheckCallbackContentTypeIsFormUrlEncoded, RejectAuthCodeInUrlQuery and
RejectErrorInUrlQuery before its own checks (docs/security/test-plans.md)."""
from __future__ import annotations

import pytest

from tests.oidc.conformance.relying_party import RelyingParty, register_rp
from tests.oidc.conformance.test_basic_op import *  # noqa: F403 (the Basic plan's modules, collected here again)

pytestmark = pytest.mark.slow
RESPONSE_MODE = "form_post"


@pytest.fixture(scope="module")
def rp(op, app_server) -> RelyingParty:
    assert "form_post" in op.metadata["response_modes_supported"]    # the plan's precondition
    # as the Basic plan's: allowing unsigned request objects (test_basic_op.rp)
    return register_rp(op, app_server.url, response_mode=RESPONSE_MODE, allow_unsigned_request_objects=True)

"""The OpenID Foundation's Form Post OP certification plan in its dynamic_client variant: the modules of
test_basic_op_dynamic.py (the Basic plan's, each registering its own client), each with
response_mode=form_post, checked as test_formpost_basic_op.py checks the Form Post plan's responses
(docs/security/test-plans.md)."""
from __future__ import annotations

import pytest

from tests.oidc.conformance.relying_party import RelyingParty
from tests.oidc.conformance.test_basic_op_dynamic import *  # noqa: F403 (the plan's modules, collected here again)
from tests.oidc.conformance.test_basic_op_dynamic import dynamic_client

pytestmark = pytest.mark.slow
RESPONSE_MODE = "form_post"


@pytest.fixture
def rp(op, clients) -> RelyingParty:
    assert "form_post" in op.metadata["response_modes_supported"]    # the plan's precondition
    return dynamic_client(clients, RESPONSE_MODE).rp

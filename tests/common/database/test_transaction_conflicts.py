"""Writes that meet a concurrent transaction are retried, never answered 503 (issue 16 item 23).
DynamoDB Local locks whole tables and never reports a conflict, so these races run through
ContendedDynamoDB, which refuses racing writes as Amazon DynamoDB does."""
from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import unique_name
from tests.services.test_registration_service_process import race
from tests.support.contended_dynamodb import contended_dynamodb


@pytest.fixture
def contended(dynamodb_endpoint):
    with contended_dynamodb(dynamodb_endpoint) as proxy:
        yield proxy


def test_twenty_racing_registrations_of_one_username_through_conflicts(make_server, contended):
    # only conflicts are under test: a loaded machine is slow, not down, and twenty hashes may wait
    url, _ = make_server(dynamodb_endpoint_url=contended.url, dynamodb_read_timeout=30, password_hash_queue=32)
    for _ in range(4):
        name = unique_name()
        bodies = [{"username": name, "email": f"{name}{i}@example.com", "password": "a long passphrase"}
                  for i in range(20)]
        responses = race(url, bodies)
        outcomes = Counter((r.status_code, r.json().get("code")) for r in responses)
        assert outcomes == Counter({(201, None): 1, (409, "username_taken"): 19}), [r.text for r in responses]
        assert outcomes == Counter({(201, None): 1, (409, "username_taken"): 19})
    assert contended.conflicts > 0  # the races did meet conflicts, and none reached a person

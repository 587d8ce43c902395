"""People for the admin API's tests (SPEC §15): an operator with a role, and a person acted upon,
each registered and signed in over HTTP."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, NamedTuple

from accounts import user_service as users
from accounts.models import Role
from citylogin.client.api import Client
from tests.support.dynamo_faults import DynamoFaults
from tests.support.live import PASSWORD, register_device


def operator(url: str, ctx, role: Role | None) -> Client:
    """A signed-in person whose account holds `role` (None: no role)."""
    client = register_device(url)
    if role is not None:
        users.set_role(ctx, user_uuid=client.key_file.user_uuid, role=role, granted=True)
    client.login(PASSWORD)
    return client


def person(url: str) -> Client:
    """A signed-in person without a role."""
    client = register_device(url)
    client.login(PASSWORD)
    return client


def same_session_at(url: str, client: Client) -> Client:
    """`client`'s session, its calls sent to the server at `url` (another process on the same tables)."""
    there = Client(url, key_file=client.key_file)
    there.use_tokens(client.tokens())
    return there


class BehindFaults(NamedTuple):
    faults: DynamoFaults
    operator: Client  # at a server whose DynamoDB answers
    target: Client
    there: Client     # the operator's session at a server whose DynamoDB calls fail on demand


@contextmanager
def operator_behind_faults(make_server, dynamodb_endpoint: str, role: Role) -> Iterator[BehindFaults]:
    """An operator with `role` and a person to act on, signed in at one server, and the operator's
    session at a second one on the same tables, whose DynamoDB calls fail as `faults` says."""
    url, ctx = make_server()
    with DynamoFaults(dynamodb_endpoint) as faults:
        behind, _ = make_server(dynamodb_endpoint_url=faults.url, create_tables=False)
        acting = operator(url, ctx, role)
        yield BehindFaults(faults, acting, person(url), same_session_at(behind, acting))

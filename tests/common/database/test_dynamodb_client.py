"""The DynamoDB client as configured: botocore's per-call parameter check is off in production
(it costs CPU on every call) and on where a test asks for it; the pool follows the setting."""
from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ParamValidationError

from common.config import load_settings
from tests.support.tcp_faults import refused_endpoint
from common.runtime.context import _dynamodb_client


@pytest.fixture(scope="module")
def refused():
    with refused_endpoint() as url:  # a call that is sent fails to connect
        yield url


@pytest.fixture
def client_with(refused):
    """A DynamoDB client made from these settings (and the refused endpoint), as the app makes it."""
    def client(environ: dict[str, str]):
        settings = load_settings(environ={"CITYLOGIN_DYNAMODB_ENDPOINT_URL": refused, **environ})
        return _dynamodb_client(settings, connect_timeout=0.5, read_timeout=0.5, max_attempts=1)
    return client


def test_production_sends_without_botocore_parameter_validation(client_with):
    # A call of the wrong shape (a string for a boolean) is not checked against the API model:
    # it is sent (and here cannot connect).
    with pytest.raises(EndpointConnectionError):
        client_with({}).get_item(TableName="t", Key={"k": {"S": "v"}}, ConsistentRead="yes")


def test_validation_on_refuses_a_malformed_call_before_sending_it(client_with):
    with pytest.raises(ParamValidationError):
        client_with({"CITYLOGIN_DYNAMODB_PARAMETER_VALIDATION": "true"}).get_item(
            TableName="t", Key={"k": {"S": "v"}}, ConsistentRead="yes")


def test_the_pool_follows_the_setting(client_with):
    assert client_with({}).meta.config.max_pool_connections == 64
    assert client_with({"CITYLOGIN_DYNAMODB_MAX_POOL_CONNECTIONS": "8"}).meta.config.max_pool_connections == 8

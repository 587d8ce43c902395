"""The DynamoDB client as configured: botocore's per-call parameter check is off in production
(it costs CPU on every call) and on where a test asks for it; the pool follows the setting."""
from __future__ import annotations

import pytest
from botocore.exceptions import EndpointConnectionError, ParamValidationError

from common.config import load_settings
from common.context import _dynamodb_client
from common.dynamodb_local import free_port

CLOSED_PORT = f"http://127.0.0.1:{free_port()}"   # nothing listens: a call that is sent fails to connect


def _client(environ: dict[str, str]):
    settings = load_settings(environ={"CITYLOGIN_DYNAMODB_ENDPOINT_URL": CLOSED_PORT, **environ})
    return _dynamodb_client(settings, connect_timeout=0.5, read_timeout=0.5, max_attempts=1)


def test_production_sends_without_botocore_parameter_validation():
    # A call of the wrong shape (a string for a boolean) is not checked against the API model:
    # it is sent (and here cannot connect).
    with pytest.raises(EndpointConnectionError):
        _client({}).get_item(TableName="t", Key={"k": {"S": "v"}}, ConsistentRead="yes")


def test_validation_on_refuses_a_malformed_call_before_sending_it():
    with pytest.raises(ParamValidationError):
        _client({"CITYLOGIN_DYNAMODB_PARAMETER_VALIDATION": "true"}).get_item(
            TableName="t", Key={"k": {"S": "v"}}, ConsistentRead="yes")


def test_the_pool_follows_the_setting():
    assert _client({}).meta.config.max_pool_connections == 64
    assert _client({"CITYLOGIN_DYNAMODB_MAX_POOL_CONNECTIONS": "8"}).meta.config.max_pool_connections == 8

"""Shared fixtures: one in-memory DynamoDB Local per test run (shared by all xdist workers), apps built
through the factories."""
from __future__ import annotations

import os
import uuid

import pytest

from common.dynamodb_local import DynamoDBLocal

# Cheap Argon2id for tests; the benchmark measures the real parameters.
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 8192, "argon2_parallelism": 1}
# The suite registers and renews far more from 127.0.0.1 than a person would; the tests of these
# limits set their own.
RAISED_LIMITS = {"registrations_per_hour_per_ip": 10**6, "registration_refusals_per_hour_per_ip": 10**6,
                 "renewals_per_day_per_device": 10**6}


def pytest_configure(config):
    # The developer's own CITYLOGIN_* settings must not leak into the tests.
    for name in [n for n in os.environ if n.startswith("CITYLOGIN_")]:
        del os.environ[name]


_ENDPOINT_KEY = "citylogin_dynamodb_endpoint"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Under xdist the controller runs the one DynamoDB Local and hands its endpoint to each worker:
    one Java process for the run, not one per worker (each test module has its own table prefix)."""
    config = node.config
    if not hasattr(config, "_citylogin_dynamodb"):
        config._citylogin_dynamodb = DynamoDBLocal().start()
    node.workerinput[_ENDPOINT_KEY] = config._citylogin_dynamodb.endpoint_url


def pytest_unconfigure(config):
    local = getattr(config, "_citylogin_dynamodb", None)
    if local is not None:
        local.stop()


@pytest.fixture(scope="session")
def dynamodb_endpoint(request):
    shared = getattr(request.config, "workerinput", {}).get(_ENDPOINT_KEY)
    if shared:
        yield shared
        return
    with DynamoDBLocal() as local:
        yield local.endpoint_url


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("citylogin-data")


@pytest.fixture(scope="module")
def table_prefix():
    return f"t{uuid.uuid4().hex[:8]}_"


@pytest.fixture
def base_config(dynamodb_endpoint, data_dir, table_prefix):
    """Settings for an app in this test module; tests add their own keys."""
    return {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
            "table_prefix": table_prefix, "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS,
            "dynamodb_parameter_validation": True,   # production turns botocore's check off; tests keep it
            "deletion_sweep_interval": 0}  # no sweeper thread per test app; its tests turn it on


@pytest.fixture
def make_server(base_config):
    """start(**settings) -> (url, context): the all-in-one app on a real socket, stopped after the test."""
    from tests.support.fixtures import app_servers
    with app_servers(base_config) as start:
        yield start


@pytest.fixture(scope="module")
def registration_url(dynamodb_endpoint, data_dir, table_prefix):
    """`python -m registration.app_registration` as a real process for this module's tables."""
    from tests.support.services import running_service
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir,
              "table_prefix": table_prefix, **FAST_ARGON2, **RAISED_LIMITS}
    with running_service("registration.app_registration", config_env(config)) as url:
        yield url


def config_env(config: dict) -> dict:
    """The same settings as CITYLOGIN_* variables, for service subprocesses."""
    return {f"CITYLOGIN_{k.upper()}": str(v) for k, v in config.items()}


def unique_name(prefix: str = "user") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"

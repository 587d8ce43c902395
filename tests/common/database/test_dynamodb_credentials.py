"""Which credentials the DynamoDB client signs with (issue 33): a DynamoDB Local takes the fixed
local pair; every other endpoint (a regional or VPC endpoint URL) and no endpoint at all take the
normal AWS credential chain. CITYLOGIN_DYNAMODB_LOCAL says which when the host does not; an
endpoint on this machine is a DynamoDB Local unless it says otherwise."""
from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import NoCredentialsError

from common.config import ConfigError, is_local_dynamodb, load_settings
from common.database import dynamo
from common.keys.encryption import key_encryptor

REGIONAL = "https://dynamodb.eu-west-1.amazonaws.com"
VPC_ENDPOINT = "https://vpce-0a1b2c3d-4e5f.dynamodb.eu-west-1.vpce.amazonaws.com"


@pytest.fixture
def chain(monkeypatch, tmp_path):
    """The credential chain holds only these environment keys (no files, no instance role)."""
    for name in ("AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMTHECHAIN")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "chain-session-token")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # read the environment afresh
    yield monkeypatch
    boto3.DEFAULT_SESSION = None


def signed_by(endpoint_url: str, local: bool | None = None) -> tuple[str, str | None]:
    """(the access key id in the Authorization header, the session token) the client would send."""
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url, local=local)
    headers = client._signer.headers("DynamoDB_20120810.GetItem", b"{}")
    credential = headers["Authorization"].split("Credential=")[1].split("/")[0]
    return credential, headers.get("X-Amz-Security-Token")


@pytest.mark.parametrize(("endpoint", "local", "expected"), [
    (None, None, False), ("", "true", False),
    ("http://localhost:8000", None, True), ("http://127.0.0.1:8000", None, True), ("http://[::1]:8000", None, True),
    ("http://127.0.0.1:8000", "false", False), ("http://127.0.0.1:8000", False, False),
    (REGIONAL, None, False), (VPC_ENDPOINT, None, False), ("http://dynamodb-local:8000", None, False),
    ("http://dynamodb-local:8000", "true", True), ("http://dynamodb-local:8000", True, True),
])
def test_a_dynamodb_local_is_one_on_this_machine_or_one_the_operator_names(endpoint, local, expected):
    assert is_local_dynamodb(endpoint, local) is expected


def test_the_settings_create_tables_only_on_a_dynamodb_local():
    def settings(**environ: str):
        return load_settings(environ={f"CITYLOGIN_{k.upper()}": v for k, v in environ.items()})
    assert settings(dynamodb_endpoint_url="http://127.0.0.1:8000").create_tables is True
    for remote in (REGIONAL, VPC_ENDPOINT):
        assert settings(dynamodb_endpoint_url=remote).create_tables is False
        assert settings(dynamodb_endpoint_url=remote).uses_dynamodb_local is False
    named = settings(dynamodb_endpoint_url="http://dynamodb-local:8000", dynamodb_local="true")
    assert named.create_tables is True and named.uses_dynamodb_local is True


def test_against_an_aws_endpoint_url_the_key_encryption_key_is_required_as_without_one(tmp_path):
    settings = load_settings({"dynamodb_endpoint_url": VPC_ENDPOINT, "data_dir": tmp_path}, environ={})
    with pytest.raises(ConfigError, match="required against Amazon DynamoDB"):
        key_encryptor(settings)
    assert not (tmp_path / "keys").exists()  # no local key file was made for a real table


def test_an_aws_endpoint_url_signs_with_the_credential_chain(chain):
    for endpoint in (REGIONAL, VPC_ENDPOINT):
        assert signed_by(endpoint) == ("AKIDFROMTHECHAIN", "chain-session-token")


def test_a_dynamodb_local_signs_with_the_local_pair_unless_told_it_is_not_one(chain):
    assert signed_by("http://127.0.0.1:8000") == (dynamo.LOCAL_KEY, None)
    assert signed_by("http://127.0.0.1:8000", local=False) == ("AKIDFROMTHECHAIN", "chain-session-token")
    assert signed_by(VPC_ENDPOINT, local=True) == (dynamo.LOCAL_KEY, None)


def test_no_credentials_in_the_chain_is_an_outage_named_credentials(chain):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        chain.delenv(name)
    with pytest.raises(NoCredentialsError) as raised:
        signed_by(VPC_ENDPOINT)
    assert dynamo.outage_cause(raised.value) == "credentials"

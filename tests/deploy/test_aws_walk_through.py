"""The AWS walk-through of docs/guides/aws.md, rehearsed on this machine (issue 33): each step that can
run without an AWS account runs here, as the guide writes it, against stand-ins that check what AWS
checks. DynamoDB is DynamoDB Local behind nginx with TLS of a private CA (`AWS_CA_BUNDLE`) and a
front that verifies every request's SigV4 against temporary keys that rotate every few seconds
(a rotated key accepted as long as botocore may still sign with it: tests/support/aws_credentials.py);
the keys come from a fake ECS container credentials endpoint, as a Fargate task's role's do; KMS
and STS are moto's. The endpoints are Amazon's by botocore's own `AWS_ENDPOINT_URL_<SERVICE>`
variables, so citylogin runs with no endpoint URL of its own, exactly as the template sets it up.

What cannot run here (the guide says so too): the ACM certificate, the ECR push, CloudFormation
itself (the tables are made from common/database/dynamo.py, whose agreement with the template
tests/deploy/test_aws_template.py checks), the load balancer and its trust store, IAM's evaluation
of the task role's policy, and the container agent's own address (169.254.170.2)."""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import boto3
import pytest
import requests

from citylogin.client.api import Client
from common.database import dynamo
from tests.conftest import unique_name
from tests.deploy.test_aws_template import TEMPLATE, container_environment, plain, walk_through
from tests.support.aws_credentials import CheckingFront, ContainerCredentials, KeyIssuer
from tests.support.dynamodb_tls import dynamodb_behind_tls
from tests.support.live import PASSWORD
from tests.support.moto_server import running_moto
from tests.support.ports import free_port
from tests.support.services import running_process

REPO = TEMPLATE.parents[2]
BIN = Path(sys.executable).parent  # the virtual environment's bin: the guide's .venv/bin
CITYLOGIN = BIN / "citylogin"
REGION = "eu-west-1"
HOST = "login.example.com"  # the walk-through's $HOST
ROTATE_EVERY = 3  # seconds between generations of the task role's keys


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode
    decoded, problems = decode(str(TEMPLATE))
    assert problems == []
    return plain(decoded)


@pytest.fixture(scope="module")
def aws(dynamodb_endpoint, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The account: its DynamoDB (TLS, checked signatures), KMS and STS, the task role's rotating
    keys, the environment a task or an operator's shell has, and the stack's tables."""
    directory = tmp_path_factory.mktemp("aws")
    with ExitStack() as stack:
        issuer = stack.enter_context(KeyIssuer(rotate_every=ROTATE_EVERY))
        container = stack.enter_context(ContainerCredentials(issuer))
        # Two gunicorn workers of 32 threads: while one thread refreshes, the others sign with the keys
        # botocore holds, which AWS accepts until they expire (however slow the refresh on a busy machine).
        front = stack.enter_context(CheckingFront(dynamodb_endpoint, issuer, region=REGION, keeps_rotated_keys=True))
        tls = stack.enter_context(dynamodb_behind_tls(front.url, directory / "tls"))
        moto = stack.enter_context(running_moto(unauthenticated_calls=10**9))  # KMS and STS, unchecked
        (directory / "empty").write_text("")
        env = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_CA_BUNDLE": str(tls.ca_file),
               "AWS_ENDPOINT_URL_DYNAMODB": tls.url, "AWS_ENDPOINT_URL_KMS": moto, "AWS_ENDPOINT_URL_STS": moto,
               "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": str(directory / "empty"),
               "AWS_SHARED_CREDENTIALS_FILE": str(directory / "empty"), **container.environment()}
        kms = boto3.client("kms", region_name=REGION, endpoint_url=moto, aws_access_key_id="x",
                           aws_secret_access_key="x")
        prefix = unique_name("walk") + "_"
        # The stack's tables (CloudFormation's part), made with the code's definitions.
        dynamo.ensure_tables(dynamo.make_client(region=REGION, endpoint_url=dynamodb_endpoint, read_timeout=30),
                             dynamo.TableNames.with_prefix(prefix))
        yield {"env": env, "front": front, "container": container, "issuer": issuer, "prefix": prefix,
               "kms_key_arn": kms.create_key()["KeyMetadata"]["Arn"], "directory": directory}


def guide_step(number: int) -> str:
    """The code block of step `number` of the AWS guide's walk-through, lines joined."""
    section = walk_through()
    step = section[section.index(f"\n{number}. **"):section.index(f"\n{number + 1}. **")]
    block = re.search(r"```sh\n(.*?)```", step, re.S)
    assert block, f"step {number} has no command"
    return block.group(1).replace("\\\n", " ")


def key_ring_command(aws: dict[str, Any], subcommand: list[str]) -> subprocess.CompletedProcess[str]:
    """Step 5's command as the guide writes it (its variables, `.venv/bin/citylogin`), with the
    walk-through's placeholders filled in, run in the operator's shell of `aws`."""
    words = shlex.split(guide_step(5))
    assert words[-2:] == [".venv/bin/citylogin", "init"], words
    values = {"$AWS_REGION": REGION, "<KmsKeyArn>": aws["kms_key_arn"]}
    variables = dict(word.split("=", 1) for word in words[:-2])
    assert set(variables) == {"CITYLOGIN_AWS_REGION", "CITYLOGIN_TABLE_PREFIX", "CITYLOGIN_KMS_KEY_ID"}
    variables = {name: values.get(value, value) for name, value in variables.items()}
    variables["CITYLOGIN_TABLE_PREFIX"] = aws["prefix"]  # the guide's citylogin_, unique per test run
    env = {**_clean_environment(), **aws["env"], **variables, "CITYLOGIN_DATA_DIR": str(aws["directory"] / "data")}
    return subprocess.run([str(CITYLOGIN), *subcommand], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def _clean_environment() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith(("CITYLOGIN_", "AWS_"))}


def task_environment(template: dict[str, Any], aws: dict[str, Any]) -> dict[str, str]:
    """The container's environment as ECS sets it for the template's defaults and the walk-through's
    values: the task definition's variables resolved, the image's own ENV, and what ECS adds."""
    parameters = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    parameters.update(HostName=HOST, TablePrefix=aws["prefix"])
    conditions = {"UseSns": parameters["Notifier"] == "sns", "UseMutualTls": parameters["TrustStoreBucket"] != ""}

    def resolved(value: Any) -> str:
        if isinstance(value, str):
            return value
        (function, argument), = value.items()
        if function == "Ref":
            return REGION if argument == "AWS::Region" else parameters[argument]
        if function == "Fn::GetAtt" and argument == ["KeyRingKey", "Arn"]:
            return aws["kms_key_arn"]
        if function == "Fn::Sub" and isinstance(argument, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: resolved({"Ref": m.group(1)}), argument)
        if function == "Fn::If":
            condition, then, otherwise = argument
            return resolved(then if conditions[condition] else otherwise)
        raise AssertionError(f"the rehearsal does not know {function} {argument}: teach task_environment")

    variables = {name: resolved(value) for name, value in container_environment(template).items()}
    image = dict(re.findall(r"^ENV (\w+)=(\S+)$", (REPO / "Dockerfile").read_text(), re.M))
    image["PROMETHEUS_MULTIPROC_DIR"] = str(aws["directory"] / "metrics")
    return {**image, **variables}


def image_command(port: int) -> list[str]:
    """The Dockerfile's CMD (gunicorn with the image's config, worker class, workers and threads),
    bound to 127.0.0.1:`port` in place of the container's 0.0.0.0:8000."""
    (cmd,) = re.findall(r"^CMD (\[.*\])$", (REPO / "Dockerfile").read_text(), re.M)
    argv = json.loads(cmd)
    assert argv[argv.index("--bind") + 1] == "0.0.0.0:8000"
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    return [str(BIN / argv[0]), *argv[1:]]


class Device(Client):
    """A device reaching the task as the load balancer forwards it: its proofs name https://$HOST."""

    def proof(self, method: str, url: str, *, access_token: str | None = None) -> str:
        return super().proof(method, f"https://{HOST}{urlsplit(url).path}", access_token=access_token)


def test_step_5_makes_the_key_ring_with_the_operator_s_credential_chain_over_tls(aws):
    aws["front"].reset_counts()
    done = key_ring_command(aws, ["init"])
    assert done.returncode == 0, done.stderr[-2000:]
    listed = key_ring_command(aws, ["keys", "list"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "jwt" in listed.stdout.lower()
    front = aws["front"]
    assert front.refusals == {} and front.accepted, (front.refusals, front.accepted)


def test_step_6_the_image_serves_with_the_task_s_environment_through_key_rotations(template, aws):
    if key_ring_command(aws, ["keys", "list"]).returncode != 0:  # step 5 comes first
        assert key_ring_command(aws, ["init"]).returncode == 0
    port = free_port()
    env = {**aws["env"], **task_environment(template, aws)}
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
    front, issuer = aws["front"], aws["issuer"]
    with running_process(image_command(port), port=port, env=env, cwd=REPO, timeout=60) as url:
        front.reset_counts()
        device = Device(url)
        name = unique_name("walk")
        device.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        device.login(PASSWORD)
        first = issuer.current().number
        refreshed = 0
        # Across at least three rotations of the task role's keys, until the task has signed with three
        # generations of them (each a refresh by botocore), however slowly a busy machine serves.
        deadline = time.monotonic() + 300
        while issuer.current().number < first + 3 or len(front.generations_seen) < 3 or refreshed <= 5:
            assert time.monotonic() < deadline, (refreshed, front.generations_seen, front.refusals)
            device.refresh()
            assert device.request("GET", "/session/me").status_code == 200
            refreshed += 1
            time.sleep(0.3)
        assert requests.get(url + "/healthz", timeout=10).status_code == 200
    assert front.refusals == {}, front.refusals


def test_init_and_keys_take_an_endpoint_url_with_the_credential_chain(aws):
    """The guide's other form: `CITYLOGIN_DYNAMODB_ENDPOINT_URL` names the endpoint (a regional or
    VPC endpoint; here one on this machine, so `CITYLOGIN_DYNAMODB_LOCAL=false` says it is not a
    DynamoDB Local). Signed with the local pair instead, the same command is refused by DynamoDB."""
    env = {k: v for k, v in aws["env"].items() if k != "AWS_ENDPOINT_URL_DYNAMODB"}
    env["CITYLOGIN_DYNAMODB_ENDPOINT_URL"] = aws["env"]["AWS_ENDPOINT_URL_DYNAMODB"]
    front = aws["front"]
    assert key_ring_command({**aws, "env": {**env, "CITYLOGIN_DYNAMODB_LOCAL": "false"}}, ["init"]).returncode == 0
    front.reset_counts()
    listed = key_ring_command({**aws, "env": {**env, "CITYLOGIN_DYNAMODB_LOCAL": "false"}}, ["keys", "list"])
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert front.refusals == {} and front.accepted

    as_local = key_ring_command({**aws, "env": env}, ["keys", "list"])
    assert as_local.returncode != 0
    assert front.refusals.get("UnrecognizedClientException"), front.refusals
    assert "Traceback" not in as_local.stderr, as_local.stderr[-2000:]
    assert "DynamoDB cannot serve (credentials)" in as_local.stderr and "CITYLOGIN_DYNAMODB_LOCAL" in as_local.stderr

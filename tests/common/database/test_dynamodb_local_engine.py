"""The DynamoDB Local that citylogin starts (serve, `citylogin dynamodb-local`, the tests) runs with its
telemetry off: the engine sends AWS no usage data about this machine's tables. Its JVM compiles with the
quick compiler alone."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from common.database.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.slow  # a Java process of its own


def test_the_engine_runs_with_telemetry_off_on_the_quick_compiler_and_answers():
    with DynamoDBLocal() as local:
        assert local.process is not None
        running = Path(f"/proc/{local.process.pid}/cmdline").read_bytes().split(b"\0")
        jar_options = running[running.index(b"-jar") + 2:]     # after the jar: what DynamoDB Local itself reads
        assert b"-disableTelemetry" in jar_options, running
        jvm_options = running[1:running.index(b"-jar")]           # before it: what the JVM reads
        assert b"-XX:TieredStopAtLevel=1" in jvm_options, running
        threads = [(task / "comm").read_text().strip() for task in Path(f"/proc/{local.process.pid}/task").iterdir()]
        client = boto3.client("dynamodb", endpoint_url=local.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        assert "TableNames" in client.list_tables()           # an option it did not know would have stopped it
        assert any(name.startswith("C1 Compiler") for name in threads), threads
        assert not any(name.startswith("C2 Compiler") for name in threads), threads  # the JVM read it

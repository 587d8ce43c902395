"""Fixtures of the common/mail/ tests."""
from __future__ import annotations

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def aws(monkeypatch):
    """A boto3 session on moto's SES, SNS and KMS, with test credentials (single-threaded tests only)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")

"""DynamoDB failures at the one error handler: outages, timeouts, throttling and refused
credentials are 503 with Retry-After and one log line per burst naming the cause (issues 8, 33);
anything else stays a 500 with its trace."""
from __future__ import annotations

import logging

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    SSLError,
)
from flask import Flask

from common.log_bursts import BurstLog
from common.web.error_handlers import register_error_handlers


def client_error(code: str, operation: str = "GetItem", **extra) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}, **extra}, operation)


# Each failure DynamoDB (or the way to it) can have, with the cause the log line names.
TRANSIENT = [
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "connection"),
    (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), "connection"),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), "timeout"),
    (SSLError(endpoint_url="https://127.0.0.1:1", error="certificate verify failed"), "TLS"),
    (NoCredentialsError(), "credentials"),
    (CredentialRetrievalError(provider="container-role", error_msg="500"), "credentials"),
    *((client_error(code), "throttling") for code in ("ProvisionedThroughputExceededException",
                                                      "ThrottlingException", "RequestLimitExceeded")),
    *((client_error(code), "server error") for code in ("InternalServerError", "ServiceUnavailable")),
    (client_error("TransactionInProgressException"), "contention"),
    *((client_error(code), "credentials") for code in ("UnrecognizedClientException", "ExpiredTokenException",
                                                       "InvalidSignatureException", "AccessDeniedException")),
    (ClientError({"Error": {"Code": "InvalidSignatureException", "Message": "Signature expired: 20261125T100000Z "
                            "is now earlier than 20261125T101000Z (20261125T101500Z - 5 min.)"}}, "GetItem"),
     "clock skew"),
    (ClientError({"Error": {"Code": "InvalidSignatureException", "Message": "Signature not yet current: "
                            "20261125T103000Z is still later than 20261125T102000Z (20261125T101500Z + 5 min.)"}},
                 "GetItem"), "clock skew"),
    (ClientError({"Error": {"Code": "ExpiredTokenException",
                            "Message": "The security token included in the request is expired"}}, "GetItem"),
     "credentials"),
    (client_error("TransactionCanceledException", "TransactWriteItems",
                  CancellationReasons=[{"Code": "None"}, {"Code": "ThrottlingError"}]), "throttling"),
]
BUGS = [
    client_error("ValidationException"),
    client_error("ResourceNotFoundException"),
    client_error("TransactionCanceledException", "TransactWriteItems",
                 CancellationReasons=[{"Code": "ConditionalCheckFailed"}, {"Code": "ThrottlingError"}]),
    KeyError("password_hash"),
]


def app_raising(error: Exception) -> Flask:
    app = Flask(__name__)
    register_error_handlers(app)

    @app.get("/")
    def fail():
        raise error

    return app


@pytest.mark.parametrize(("error", "cause"), TRANSIENT,
                         ids=[type(e).__name__ + str(getattr(e, "response", "")) for e, _ in TRANSIENT])
def test_outage_timeout_throttling_and_credentials_answer_503_with_retry_after(error, cause, caplog):
    client = app_raising(error).test_client()
    with caplog.at_level(logging.INFO):
        answers = [client.get("/") for _ in range(20)]
    assert {(a.status_code, a.json["code"], a.headers["Retry-After"]) for a in answers} == \
        {(503, "service_unavailable", "5")}
    assert answers[0].mimetype == "application/problem+json"
    # Only this app's answers: another test's key-ring thread may log in this worker meanwhile.
    records = [r for r in caplog.records if r.name == "common.web.error_handlers"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert f"DynamoDB unavailable ({cause}: " in records[0].getMessage()


@pytest.mark.parametrize("error", BUGS, ids=repr)
def test_other_errors_stay_500_with_a_trace(error, caplog):
    with caplog.at_level(logging.INFO):
        answer = app_raising(error).test_client().get("/")
    assert (answer.status_code, answer.json["code"]) == (500, "internal_error")
    assert "Retry-After" not in answer.headers
    assert [r for r in caplog.records if r.name == "common.web.error_handlers"][-1].exc_info is not None


def test_burst_log_reports_what_it_left_out_once_per_window(caplog):
    now = [0.0]
    burst = BurstLog(logging.getLogger("test.burst"), window=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        logged = [burst.log(logging.WARNING, "down") for _ in range(100)]
        now[0] = 61.0
        logged.append(burst.log(logging.WARNING, "down"))
    assert logged.count(True) == 2
    assert [r.getMessage() for r in caplog.records if r.name == "test.burst"] == [
        "down", "down (99 more like it since the last report)"]


def test_botocore_s_failed_credential_refreshes_log_one_line_per_burst_without_a_trace(caplog):
    from common.web.app_factory import _quiet_credential_refreshes
    _quiet_credential_refreshes()
    _quiet_credential_refreshes()  # idempotent: one filter however many apps a process makes
    logger = logging.getLogger("botocore.credentials")
    with caplog.at_level(logging.WARNING, logger="botocore.credentials"):
        for _ in range(5):
            try:
                raise RuntimeError("the container endpoint answered 500")
            except RuntimeError:
                logger.warning("Refreshing temporary credentials failed during mandatory refresh period.",
                               exc_info=True)
    records = [r for r in caplog.records if r.name == "botocore.credentials"]
    assert len(records) <= 1 and all(r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text

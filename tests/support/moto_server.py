"""moto in server mode as a child process: a server that checks SigV4 signatures, which DynamoDB
Local does not. moto's IAM authentication is on once it has served INITIAL_NO_AUTH_ACTION_COUNT
calls: the first calls set up the users, roles and keys it then checks each request against
(moto/iam/access_control.py: the key must be a user's or an assumed role's, a role's session
token must be the one STS issued, and the signature is recomputed with botocore's SigV4Auth)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator
from xml.etree import ElementTree

from tests.support.ports import free_port
from tests.support.waiting import stop, until_listening

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


@contextmanager
def running_moto(*, unauthenticated_calls: int, timeout: float = 30.0) -> Iterator[str]:
    """moto_server on 127.0.0.1:<free port>, checking signatures after its first
    `unauthenticated_calls` calls; yields its URL. No AWS_* or MOTO_* variable of ours reaches it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "CITYLOGIN_"))}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(unauthenticated_calls)
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: an unread pipe would block it
        process = subprocess.Popen([str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            # moto has no health URL, and a request would count as one of its unauthenticated calls
            until_listening(process, port, timeout=timeout, name="moto_server", output=lambda: _tail(log))
            yield f"http://127.0.0.1:{port}"
        finally:
            stop(process)


def read_moto_refusals(client: Any) -> None:
    """moto refuses a DynamoDB call's key or signature in the query protocol's XML
    (`<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code>...`, status 403) where
    DynamoDB answers JSON, so botocore's JSON parser names the error by its status ("403"). This
    after-call hook puts moto's own code and message where DynamoDB's `__type` would have put them."""

    def read(http_response: Any, parsed: dict, **_: Any) -> None:
        error = parsed.get("Error", {})
        if http_response.status_code != 403 or error.get("Code") != "403":
            return
        root = ElementTree.fromstring(http_response.content)
        parsed["Error"] = {"Code": root.findtext("Errors/Error/Code"), "Message": root.findtext("Errors/Error/Message")}

    client.meta.events.register("after-call.dynamodb", read, unique_id="read-moto-refusals")


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]

"""What the HTTP tests share: apps started on real sockets with per-test settings, and a reader
of problem+json answers (SPEC §3)."""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator, Mapping

import requests

from citylogin.app import create_app
from tests.support.live import serving, serving_made
from common.runtime.context import AppContext

StartServer = Callable[..., tuple[str, AppContext]]


@contextmanager
def app_servers(base_config: Mapping[str, Any]) -> Iterator[StartServer]:
    """Yields start(**settings) -> (url, context) for the all-in-one app built with base_config plus
    `settings`; every app it started is stopped on exit. `start(host_name="localhost")` serves it at
    http://localhost:<port> with that as its public_url (a WebAuthn relying-party id is a host name)."""
    with ExitStack() as stack:
        def start(*, host_name: str | None = None, **settings: Any) -> tuple[str, AppContext]:
            if host_name is None:
                app = create_app({**base_config, **settings})
                url = stack.enter_context(serving(app))
            else:
                url, app = stack.enter_context(serving_made(
                    lambda url: create_app({**base_config, **settings, "public_url": url}), host_name=host_name))
            return url, app.extensions["citylogin"]

        yield start


def cli_environment(base_config: Mapping[str, Any], *, kek: str, data_dir: str) -> dict[str, str]:
    """The environment of a CLI command (`citylogin admin`, `apps`) that reaches the tables and the
    key ring of apps made with base_config and key-encryption key `kek`."""
    return {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": base_config["dynamodb_endpoint_url"],
            "CITYLOGIN_DATA_DIR": data_dir, "CITYLOGIN_TABLE_PREFIX": base_config["table_prefix"],
            "CITYLOGIN_KEY_ENCRYPTION_KEY": kek, "CITYLOGIN_LOG_LEVEL": "WARNING"}


def problem(response: requests.Response) -> tuple[int, str, str | None]:
    """(status, code, reason) of an error answer, which must be RFC 9457 problem+json."""
    assert response.headers.get("Content-Type", "").startswith("application/problem+json"), \
        (response.status_code, response.headers.get("Content-Type"), response.text[:300])
    body = response.json()
    assert body["status"] == response.status_code and isinstance(body.get("code"), str), body
    return response.status_code, body["code"], body.get("reason")


def bearer_problem(response: requests.Response) -> tuple[int, str, str | None]:
    """Like problem(), for a 401 of a protected route: it must carry the Bearer challenge."""
    result = problem(response)
    assert response.status_code == 401, result
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, dict(response.headers)
    return result

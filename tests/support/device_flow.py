"""The screen's side of the device authorization grant (RFC 8628) in tests: an app allowed it, a request, and
polls, over plain HTTP."""
from __future__ import annotations

from typing import Any

import requests

from relying_parties import service as apps
from relying_parties.models import NewCredentials, OidcClient
from common.runtime.context import AppContext

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


def screen_app(ctx: AppContext, *, name: str = "Living-room TV app", public: bool = False,
               **options: Any) -> NewCredentials:
    """An app allowed the device grant (as `citylogin apps add NAME --device-flow`)."""
    return apps.add_app(ctx, name=name, push_url=None, oidc=OidcClient(device_flow=True, public=public, **options))


def _client(credentials: NewCredentials) -> dict[str, Any]:
    """How the app identifies itself: a public client by client_id, a confidential one by its secret."""
    if credentials.app.oidc().public:
        return {"data": {"client_id": credentials.app.client_id}}
    return {"data": {}, "auth": (credentials.app.client_id, credentials.client_secret)}


def ask(url: str, credentials: NewCredentials, *, scope: str = "openid profile offline_access",
        **extra: Any) -> requests.Response:
    """POST /oidc/device_authorization as the app's screen."""
    sent = _client(credentials)
    return requests.post(url + "/oidc/device_authorization", data={**sent["data"], "scope": scope},
                         auth=sent.get("auth"), timeout=30, **extra)


def poll(url: str, credentials: NewCredentials, device_code: str, **extra: Any) -> requests.Response:
    """One poll of the token endpoint (RFC 8628 §3.4)."""
    sent = _client(credentials)
    return requests.post(url + "/oidc/token", data={**sent["data"], "grant_type": GRANT_TYPE,
                                                    "device_code": device_code},
                         auth=sent.get("auth"), timeout=30, **extra)

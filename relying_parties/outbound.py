"""What citylogin fetches from or posts to an app's URLs (SPEC §14), by the app's standing: an app that
registered itself (RFC 7591) is held to public addresses unless the deployment allows private ones
(CITYLOGIN_OIDC_FETCH_PRIVATE_ADDRESSES); an app an operator added may use any address the operator gave
(its servers often live on a private network). Every request is common.outbound's: one deadline, a size,
no redirect."""
from __future__ import annotations

from collections.abc import Mapping

from common.config import Settings
from common.outbound.fetch import Answer, fetch
from relying_parties.models import AppRecord

POST_MAX_BYTES = 64 * 1024  # of the receiver's answer, read and thrown away (a larger one is a failed delivery)


def private_allowed(settings: Settings, app: AppRecord) -> bool:
    """Whether requests for `app` may go to a private address: an operator's app, or the deployment allows it."""
    return app.registered_with is None or settings.oidc_fetch_private_addresses


def post(settings: Settings, app: AppRecord, url: str, *, body: bytes, headers: Mapping[str, str],
         deadline_seconds: float) -> Answer:
    """A POST to `url` for `app` (its back-channel logout or push URL). Never shared: each carries its own
    body, and the pusher already sends one at a time per app (relying_parties.push)."""
    return fetch(url, method="POST", body=body, headers=headers, deadline_seconds=deadline_seconds,
                 max_bytes=POST_MAX_BYTES, private_allowed=private_allowed(settings, app))

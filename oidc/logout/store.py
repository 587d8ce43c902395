"""RP-initiated logout requests waiting for the browser's device (SPEC §14): in the one_time_tokens
table under the digest of a one-time handle, as the authorization requests are (oidc.core.store)."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from common.database import dynamo
from common.database.batch_read import KeyRead
from common.database.one_time_tokens import OneTimeTokenStore
from oidc.logout.models import LogoutRequest

LOGOUT_KIND = "oidc_logout"


class LogoutRequestStore:
    """Logout requests between /oidc/logout and the device's answer on the sign-out page."""

    def __init__(self, tokens: OneTimeTokenStore) -> None:
        self.tokens = tokens

    def create(self, *, digest: str, request: LogoutRequest, expires_epoch: int) -> None:
        # user_uuid under its own name: an account's deletion takes its waiting requests with it.
        self.tokens.create(digest=digest, kind=LOGOUT_KIND, expires_epoch=expires_epoch,
                           data={k: v for k, v in asdict(request).items() if v is not None})

    def read(self, *, digest: str, now: int) -> KeyRead[LogoutRequest | None]:
        """The waiting request (None: unknown, finished or expired), for a caller's batch read."""
        return KeyRead(self.tokens.table, OneTimeTokenStore.key(digest),
                       lambda item: _request(dynamo.from_item(item) if item else None, now))

    def get(self, *, digest: str, now: int) -> LogoutRequest | None:
        return _request(self.tokens.get(digest=digest, kind=LOGOUT_KIND, now=now), now)

    def finish(self, *, digest: str, now: int) -> bool:
        """Use the request up; False if it was not waiting (used by a parallel answer, or expired)."""
        return self.tokens.consume(digest=digest, kind=LOGOUT_KIND, now=now) is not None


def _request(data: dict[str, Any] | None, now: int) -> LogoutRequest | None:
    if not data or data.get("kind") != LOGOUT_KIND or int(data["expires_epoch"]) <= now:
        return None
    return LogoutRequest(**{k: v for k, v in data.items() if k in LogoutRequest.__dataclass_fields__})

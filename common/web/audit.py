"""The audit stream: one JSON line per security event on the `citylogin.audit` logger (and in
CITYLOGIN_AUDIT_LOG if set), counted in /metrics.

A line holds `event`, `at` (ISO UTC), the ids the caller knows (user_uuid, device_id,
session_id, by_device, ...), a `reason`, and the request's ip and request_id when there is one.
Never a password, token, digest, hash or key: such field names are refused."""
from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Iterator

from common.web import metrics
from common.web.audit_events import AuditEvent
from common.web.log_setup import AUDIT_LOGGER
from common.web.request_log import current_request

log = logging.getLogger(AUDIT_LOGGER)

# Who acts in an operator command (`citylogin admin`, `citylogin keys`): named on each of its lines.
_operator: ContextVar[str | None] = ContextVar("citylogin_operator", default=None)


@contextmanager
def operator_acting(name: str) -> Iterator[None]:
    """Every audit line written inside names `operator`."""
    token = _operator.set(name)
    try:
        yield
    finally:
        _operator.reset(token)


def current_operator() -> str | None:
    """The operator named on this command's audit lines (operator_acting), if any."""
    return _operator.get()


# A field named like a secret is a bug in the caller, caught the first time it runs. A passkey's
# private key never reaches the server, so "passkey" alone is no secret (`passkeys_removed`).
SECRET_NAME = re.compile(r"password|token|digest|hash|secret|(?<!pass)key|signature|cert", re.IGNORECASE)


__all__ = ["AuditEvent", "audit"]


def audit(event: AuditEvent, **fields: Any) -> None:
    """Write one audit line for `event`; fields that are None are left out."""
    if not isinstance(event, AuditEvent):  # a loose string would escape the documented list (docs/reference/metrics.md)
        raise TypeError(f"audit events are AuditEvent members, not {event!r}")
    refused = [name for name in fields if SECRET_NAME.search(name)]
    if refused:
        raise ValueError(f"audit fields must not carry secrets: {refused}")
    entry: dict[str, Any] = {
        "event": event.value,
        "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    request = current_request()
    if request is not None:
        entry.update(ip=request.ip, request_id=request.request_id)
    entry["operator"] = _operator.get()
    entry.update(fields)
    entry = {k: v for k, v in entry.items() if v is not None}
    log.info("%s", json.dumps(entry, default=str), extra={"audit": entry})
    metrics.count_audit_event(event.value, reason=entry.get("reason"))

"""A notifier back end that keeps what the service sends (SPEC §7), so that a test can open the link
in a message as the person would."""
from __future__ import annotations

import re
import threading

from tests.support.waiting import wait_until

LINKS = {"verify_email": re.compile(r"/#verify=[A-Za-z0-9_-]+"),
         "password_reset": re.compile(r"/#reset=[A-Za-z0-9_-]+")}
CODE = re.compile(r"^\d{6}$", re.MULTILINE)     # a mailed one-time code: six digits on a line of their own


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []
        self._lock = threading.Lock()

    def send(self, message) -> None:
        with self._lock:
            self.messages.append(message)

    def link(self, base_url: str, event: str, email: str, *, timeout: float = 30) -> str:
        """The link (base_url + `/#...`) in the last `event` message to `email`, waited for a little:
        some are sent off the response path."""
        body = self._last_body(event, email, timeout=timeout)
        found = LINKS[event].search(body)
        assert found, body
        return base_url + found.group(0)

    def code(self, event: str, email: str, *, timeout: float = 30) -> str:
        """The six-digit code in the last `event` message to `email`, waited for as `link` waits."""
        body = self._last_body(event, email, timeout=timeout)
        found = CODE.search(body)
        assert found, body
        return found.group(0)

    def body(self, event: str, email: str, *, timeout: float = 30) -> str:
        """The body of the last `event` mail to `email`, once one has come."""
        return self._last_body(event, email, timeout=timeout)

    def _last_body(self, event: str, email: str, *, timeout: float) -> str:
        def last() -> str | None:
            with self._lock:
                bodies = [m.body for m in self.messages if m.event == event and m.email == email]
            return bodies[-1] if bodies else None
        return wait_until(last, timeout=timeout, what=f"a {event} message to {email}")

    def count(self, event: str, email: str) -> int:
        with self._lock:
            return sum(1 for m in self.messages if m.event == event and m.email == email)

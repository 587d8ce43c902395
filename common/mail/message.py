"""One notification to one person: as it is queued (a Mail: its texts' key, locale and parameters,
a link as its kind and token) and as a back end sends it (a Message: subject and body, rendered by
the process that delivers it, with that process's brand and public URL)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from common import i18n

LINK_KINDS = frozenset({"verify", "reset", "not-me", "federation-link"})


@dataclass(frozen=True)
class Link:
    """A one-time link, `<public_url>/#<kind>=<token>` once rendered."""

    kind: str
    token: str

    def url(self, public_url: str) -> str:
        return f"{public_url.rstrip('/')}/#{self.kind}={self.token}"


Param = str | int | Link


@dataclass(frozen=True)
class Message:
    """One notification to one user, rendered; `event` is a stable name such as "new_device"."""

    event: str
    user_uuid: str
    email: str | None
    subject: str
    body: str


@dataclass(frozen=True)
class Mail:
    """A notification as it waits in the outbox: mail.<texts>.subject/.body in `locale`, filled with
    `params` (a Link among them becomes its URL); `{email}` is the recipient's address unless `params`
    say otherwise."""

    event: str
    user_uuid: str
    email: str | None
    texts: str
    locale: str | None
    params: Mapping[str, Param] = field(default_factory=dict)

    def render(self, public_url: str | None) -> Message:
        """The message in the brand in use in this context (common.brand.using)."""
        language, prefix = i18n.locale_of(self.locale), f"mail.{self.texts}"
        params: dict[str, object] = {"email": self.email}
        for name, value in self.params.items():
            if isinstance(value, Link):
                if public_url is None:
                    raise ValueError("a link needs the public URL")
                value = value.url(public_url)
            params[name] = value
        return Message(event=self.event, user_uuid=self.user_uuid, email=self.email,
                       subject=i18n.text(f"{prefix}.subject", language, **params),
                       body=i18n.text(f"{prefix}.body", language, **params))

    def links(self) -> list[Link]:
        return [value for value in self.params.values() if isinstance(value, Link)]

"""How one stored value reads in the readable copy of a data export: dates in the person's time zone, yes
or no, a stored code in words, a device's, session's or app's name in place of its id. Pure: the names
come from the document itself (Names), the words from the catalogues (common/i18n)."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from common import i18n
from common.timefmt import parse_iso
from flows.readable_catalogue import CLASS, Field, Kind

CLAIM_KINDS = ("username", "email", "identity")  # accounts/user_store.py's and federation's claims: "<kind>#<name>"
COUNTERS = ("fail", "lock", "pairing", "verify_resend", "admin_search", "renew", "enrol")  # rate_limits: "<kind>#..."


@dataclass
class Names:
    """The names the document gives its ids: devices, sessions (device and sign-in time) and apps."""

    devices: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, tuple[str, Any]] = field(default_factory=dict)
    apps: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Names:
        names = cls()
        for item in document.get("devices", []):
            if item.get("device_name"):
                names.devices[item["device_id"]] = item["device_name"]
        for item in document.get("sessions", []):
            names.devices.setdefault(item.get("device_id", ""), item.get("device_name") or "")
            names.sessions[item["session_id"]] = (item.get("device_name") or "", item.get("login_epoch"))
        for app in document.get("app_names", []):
            names.apps[app["client_id"]] = app["name"] or ""
        return names


@dataclass(frozen=True)
class Reader:
    """Reads values in one language and time zone, with the document's names."""

    locale: str
    zone: ZoneInfo
    names: Names

    def text(self, key: str, **params: object) -> str:
        return i18n.text(key, self.locale, **params)

    def value(self, spec: Field, raw: Any) -> str:
        """`raw` as the person reads it, by its field's kind."""
        kind = spec.kind
        if kind is Kind.TIME:
            return self.joined(self.moment(v) for v in raw) if isinstance(raw, list) else self.moment(raw)
        if kind is Kind.TIME_MS:
            return self.moment(int(raw) // 1000)
        if kind is Kind.YES_NO:
            return self.text("export.yes" if raw else "export.no")
        if kind in (Kind.WORD, Kind.WORDS):
            codes = raw.split() if isinstance(raw, str) and kind is Kind.WORDS else raw
            return self.words(spec.words, codes if isinstance(codes, list) else [codes])
        if kind is Kind.DEVICE:
            return self.device(raw)
        if kind is Kind.DEVICES:
            return self.joined(self.device(d.get("device_id", ""), d.get("device_name")) for d in raw)
        if kind in (Kind.SESSION, Kind.APP, Kind.APPS, Kind.CLAIM, Kind.COUNTER):
            return self._named(kind, raw)
        if kind in (Kind.LIMIT, Kind.MAIL, Kind.CLASS_CHANGES, Kind.OPERATOR):
            return self._said(kind, raw)
        if kind is Kind.IDENTITIES:
            return self.identities(raw)
        return plain(raw)

    def identities(self, raw: Any) -> str:
        """The account's linked identities ({link_id: {provider, email, linked_at, ...}}): each its provider,
        e-mail and when it was linked, oldest first."""
        linked = sorted((entry for entry in (raw or {}).values() if isinstance(entry, dict)),
                        key=lambda entry: str(entry.get("linked_at", "")))
        return self.joined(self.text("export.value.identity", provider=entry.get("provider") or "—",
                                     email=entry.get("email") or self.text("export.none"),
                                     time=self.moment(entry["linked_at"]) if entry.get("linked_at") else "—")
                           for entry in linked)

    def moment(self, raw: Any) -> str:
        """An ISO 8601 time or epoch seconds as a date and time in the zone (the catalogue's order)."""
        when = parse_iso(raw) if isinstance(raw, str) else datetime.fromtimestamp(int(raw), timezone.utc)
        local = when.astimezone(self.zone)
        return self.text("export.date_time", day=local.day, month=self.text(f"export.month.{local.month}"),
                         year=local.year, time=local.strftime("%H:%M"))

    def words(self, template: str, codes: list[Any]) -> str:
        return self.joined(self.text(template.format(code)) if i18n.has(template.format(code)) else str(code)
                           for code in codes)

    def joined(self, values: Iterable[str]) -> str:
        """A list in the language's way ("a, b" or "a、b"), None in words when it is empty."""
        return self.text("export.word.separator").join(values) or self.text("export.none")

    def device(self, device_id: str, name: str | None = None) -> str:
        return name or self.names.devices.get(device_id) or self.text("export.device_removed")

    def _said(self, kind: Kind, raw: Any) -> str:
        """A stored convention in words: a device limit's 0 and default, a mail's event, who acted, a
        session's changes of its kind of device."""
        if kind is Kind.LIMIT:
            return self.text("export.value.limit.default") if raw in (None, "default") else (
                self.text("export.value.limit.none") if raw == 0 else plain(raw))
        if kind is Kind.OPERATOR:  # operators/service.py's Operator.label
            prefix, _, rest = str(raw).partition(":")
            return self.text(f"export.value.operator.{prefix}") if prefix in ("user", "app") and rest else plain(raw)
        if kind is Kind.MAIL:
            key = f"mail.{raw}.subject"
            return self.text(key) if i18n.has(key) else self.text("export.value.mail_event.other")
        return self.joined(self.text("export.value.class_change", time=self.moment(change.get("at")),
                                     device_class=self.words(CLASS.words, [change.get("device_class")]))
                           for change in raw if isinstance(change, dict) and change.get("at"))

    def _named(self, kind: Kind, raw: Any) -> str:
        if kind is Kind.SESSION:
            device, login = self.names.sessions.get(raw, ("", None))
            if login is None:
                return self.text("export.session_ended")
            return self.text("export.session", device=device or self.text("export.device_removed"),
                             time=self.moment(login))
        if kind is Kind.APP:
            return self.names.apps.get(raw) or self.text("export.app_removed")
        if kind is Kind.APPS:  # sessions/models.py: "<client_id> <name>" each
            return self.joined(sorted(entry.partition(" ")[2] for entry in raw))
        prefix, _, rest = str(raw).partition("#")
        if kind is Kind.CLAIM:
            return self.text(f"export.value.claim.{prefix}", name=rest) if prefix in CLAIM_KINDS else plain(raw)
        return self.text(f"export.value.counter.{prefix if prefix in COUNTERS else 'other'}")


def plain(raw: Any) -> str:
    """A value no field describes, as stored: text, numbers, lists joined, maps as JSON."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, list):
        return ", ".join(plain(v) for v in raw)
    if isinstance(raw, dict):
        return json.dumps(raw, ensure_ascii=False, sort_keys=True)
    return str(raw)

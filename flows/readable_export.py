"""The readable copy of a person's data export (GDPR Art. 15: a copy they can understand), made from the
machine-readable document (flows/data_export.py) and nothing else: each section named as a person would
name it, what it is, why it is kept and for how long (flows/export_retention.py), each item under a
heading, each field with its label, its value as a person reads it (flows/readable_values.py) and a
phrase. What is only how an item is stored (its key's parts, a version) is left out; keys,
certificates and ids are named, their values left to the machine-readable document. A section or a
field the catalogue has no words for still shows, its values as stored: nothing stored goes missing."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from common import i18n
from common.config import Settings
from common.timefmt import time_zone
from flows import export_retention
from flows.data_export import SECTIONS
from flows.models import ReadableEntry, ReadableExport, ReadableField, ReadableSection
from flows.readable_catalogue import FIELDS, MARKERS, Field, Kind
from flows.readable_values import Names, Reader, plain

FORMAT = "citylogin-readable/1"
UTC = "UTC"
AUDIT_PREFIX = "audit#"  # sessions/history_store.py: an operator action's copy in the audit trail
WORDS = ("why", "kept", "none", "also_stored", "contents", "audit_copy", "separator")


def readable(document: dict[str, Any], *, settings: Settings, locale: str, zone_name: str | None,
             product: str) -> ReadableExport:
    """The readable copy of `document` in `locale`, its times in the zone `zone_name` names (UTC, said so,
    without one)."""
    zone = time_zone(zone_name) or ZoneInfo(UTC)
    reader = Reader(locale=locale if locale in i18n.LANGUAGES else i18n.DEFAULT, zone=zone, names=Names.of(document))
    names = [name for name, value in document.items() if isinstance(value, list) and name != "app_names"]
    ordered = [name for name in SECTIONS if name in names] + [name for name in names if name not in SECTIONS]
    note = "export.time_zone_given" if time_zone(zone_name) else "export.time_zone_default"
    return ReadableExport(
        format=FORMAT, language=reader.locale, title=reader.text("export.title", product=product),
        intro=reader.text("export.intro", product=product), exported_at=reader.moment(document["exported_at"]),
        time_zone=zone.key, time_zone_note=reader.text(note, zone=zone.key),
        words={word: reader.text(f"export.word.{word}") for word in WORDS},
        sections=[_section(reader, name, document[name], settings) for name in ordered])


def _section(reader: Reader, name: str, items: list[dict[str, Any]], settings: Settings) -> ReadableSection:
    described = name in FIELDS
    prefix = f"export.{name}" if described else "export.unknown"
    kept = export_retention.kept(name, settings=settings, locale=reader.locale)
    return ReadableSection(source=name, title=reader.text(f"{prefix}.title", name=name),
                           about=reader.text(f"{prefix}.about"), why=reader.text(f"{prefix}.why"),
                           kept=kept or reader.text("export.unknown.kept"), described=described,
                           entries=_entries(reader, name, items))


def _entries(reader: Reader, section: str, items: list[dict[str, Any]]) -> list[ReadableEntry]:
    """One entry per item; an operator action's copy in the audit trail joins its entry in the history
    (the same event, kept twice) rather than showing twice."""
    entries: list[ReadableEntry] = []
    shown: dict[Any, ReadableEntry] = {}
    for item in items:
        audit_copy = section == "login_history" and str(item.get("user_uuid", "")).startswith(AUDIT_PREFIX)
        twin = shown.get(item.get("event_key")) if audit_copy else None
        if twin is not None:
            twin.also_stored.append(reader.text("export.word.audit_copy"))
            continue
        entry = _entry(reader, section, item)
        if audit_copy:
            entry.also_stored.append(reader.text("export.word.audit_copy"))
        elif section == "login_history":
            shown[item.get("event_key")] = entry
        entries.append(entry)
    return entries


def _entry(reader: Reader, section: str, item: dict[str, Any]) -> ReadableEntry:
    catalogue = FIELDS.get(section, {})
    fields, parts, technical = [], [], []
    for name in [*(n for n in catalogue if n in item), *sorted(n for n in item if n not in catalogue)]:
        spec = catalogue.get(name)
        if spec is not None and spec.kind is Kind.INTERNAL:
            continue
        if spec is not None and spec.kind is Kind.TECHNICAL:
            technical.append(_label(reader, section, name, spec))
        elif spec is not None and spec.kind is Kind.ENTRIES:
            parts += [_entry(reader, f"{section}_devices", part) for _, part in sorted(item[name].items())]
        else:
            fields.append(_field(reader, section, name, spec, item[name]))
    return ReadableEntry(heading=_heading(reader, section, item), fields=fields, parts=parts, also_stored=technical)


def _field(reader: Reader, section: str, name: str, spec: Field | None, raw: Any) -> ReadableField:
    if spec is None:  # no words for it (yet): its name and value as stored
        return ReadableField(label=name, value=plain(raw), about="")
    key = _label_key(section, name, spec)
    return ReadableField(label=reader.text(key), value=reader.value(spec, raw), about=reader.text(f"{key}.about"))


def _label(reader: Reader, section: str, name: str, spec: Field) -> str:
    return reader.text(_label_key(section, name, spec))


def _label_key(section: str, name: str, spec: Field) -> str:
    return f"export.field.{section}.{name}" if spec.own_label else f"export.field.{name}"


def _heading(reader: Reader, section: str, item: dict[str, Any]) -> str:
    """The item's heading: export.<section>.item (.<marker> for a section's other kinds of item), its
    {placeholders} the item's values as they read; an unknown section's item is numbered by its place."""
    if section not in FIELDS and not section.endswith("_devices"):
        return reader.text("export.unknown.item")
    marker = next((MARKERS[v] for v in (item.get("device_id"), item.get("user_uuid"), item.get("credential_id"))
                   if v in MARKERS), "action" if "action" in item else None)
    key = f"export.{section}.item" + (f".{marker}" if marker else "")
    catalogue = FIELDS[section]
    params = {name: reader.value(catalogue[name], item[name]) if name in catalogue and name in item else "—"
              for name in i18n.placeholders(i18n.text(key))}
    return reader.text(key, **params)

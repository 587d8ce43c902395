"""How long each section of a data export is kept has one source, flows/export_retention.py (its figures are
the code's own constants and settings), and docs/security/storage.md's "The readable copy" table says what
the readable copy says: its heading, why and how long, section by section."""
from __future__ import annotations

import re
from pathlib import Path

from common import i18n
from common.config import Settings
from flows import export_retention
from flows.data_export import SECTIONS
from flows.readable_catalogue import FIELDS
from sessions.history_store import HISTORY_DAYS

STORAGE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "security" / "storage.md"
DEFAULTS = Settings.model_construct(**{name: field.default for name, field in Settings.model_fields.items()})


def page_rows() -> dict[str, list[str]]:
    """The rows of the page's table under "### The readable copy": section -> [heading, why, how long]."""
    text = STORAGE_PAGE.read_text()
    start = text.index("\n### The readable copy\n")
    part = text[start:text.index("\n## ", start)]
    rows = {}
    for line in part.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`[a-z_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_the_storage_page_says_what_the_readable_copy_says():
    rows = page_rows()
    assert list(rows) == list(SECTIONS)
    for section, (heading, why, kept) in rows.items():
        assert heading == i18n.text(f"export.{section}.title", "en"), section
        assert why == i18n.text(f"export.{section}.why", "en"), section
        assert kept == export_retention.kept(section, settings=DEFAULTS, locale="en"), section


def test_every_section_has_its_retention_and_its_words_and_the_figures_are_the_codes():
    assert set(export_retention.FIGURES) == set(SECTIONS) <= set(FIELDS)
    for section in SECTIONS:
        for locale in i18n.LANGUAGES:
            kept = export_retention.kept(section, settings=DEFAULTS, locale=locale)
            assert kept and "{" not in kept, (section, locale, kept)
    # A figure the code changes changes the sentence (and so the page's table, above)
    assert f"{HISTORY_DAYS} " in export_retention.kept("login_history", settings=DEFAULTS, locale="en")
    shorter = DEFAULTS.model_copy(update={"cert_validity_days": 90})
    assert "90 days" in export_retention.kept("devices", settings=shorter, locale="en")
    one_day = DEFAULTS.model_copy(update={"cert_validity_days": 1})
    assert ", 1 day after it was issued." in export_retention.kept("devices", settings=one_day, locale="en")
    assert "発行から 1 日後" in export_retention.kept("devices", settings=one_day, locale="ja")
    assert "48 hours" in export_retention.kept("mail_outbox", settings=DEFAULTS, locale="en")
    assert "2.5 hours" in export_retention.kept("mail_outbox", settings=DEFAULTS.model_copy(
        update={"mail_give_up_hours": 2.5}), locale="en")
    assert export_retention.kept("a_table_added_later", settings=DEFAULTS, locale="en") is None

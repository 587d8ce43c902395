"""The reference pages name what the code has: every Prometheus metric of common/web/metrics.py (and of the mail
outbox, common/mail/outbox.py) is a row of
docs/reference/metrics.md, and the CLI page is generated from the click commands."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\b(?:Counter|Histogram|Gauge)\(\s*\"([a-z_]+)\"")
DOCUMENTED_METRIC = re.compile(r"^\|\s*`(citylogin_[a-z_]+)`\s*\|", re.MULTILINE)


def test_every_metric_is_documented():
    defined = {name for path in (ROOT / "common" / "web" / "metrics.py", ROOT / "common" / "mail" / "outbox.py")
               for name in METRIC.findall(path.read_text())}
    documented = set(DOCUMENTED_METRIC.findall((ROOT / "docs" / "reference" / "metrics.md").read_text()))
    assert len(defined) >= 9 and defined == documented, sorted(defined ^ documented)


def test_the_cli_page_is_generated_from_click():
    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    assert re.search(r"^::: mkdocs-click\n    :module: citylogin\.cli\.main\n    :command: main\n", page, re.MULTILINE)

"""The readable copy of a data export as one printable HTML file that needs nothing else: its styles inline,
no script, no link or image that loads anything. Every value is escaped (Jinja2's autoescape: a device's
name is whatever the person typed), and the file's own Content-Security-Policy (a meta element, and the
header when it is served) allows its one style element alone, so that even a value that got through
unescaped could neither run nor load anything, opened from the disk or from the server."""
from __future__ import annotations

import base64
import hashlib
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from common.config import Settings
from flows.models import ReadableExport
from flows.readable_export import readable

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1d2430; margin: 0; background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .25rem; border-bottom: 2px solid #d5dbe5; padding-bottom: .25rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; overflow-wrap: anywhere; }
p { margin: .25rem 0; }
.muted { color: #525c6b; }
nav ol { padding-left: 1.25rem; }
.entry { border: 1px solid #d5dbe5; border-radius: 6px; padding: .25rem .75rem .5rem; margin: .5rem 0;
         break-inside: avoid; }
.part { margin-left: 1rem; }
dl { display: grid; grid-template-columns: minmax(8rem, 14rem) 1fr; gap: .15rem 1rem; margin: .25rem 0; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
dd small { display: block; color: #525c6b; }
@media (max-width: 36rem) { dl { grid-template-columns: 1fr; } dd { margin-bottom: .35rem; } }
@media print { body { font-size: 11pt; } a { color: inherit; text-decoration: none; } }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="{{ doc.language }}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{{ policy }}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{ doc.title }}</title>
<style>{{ style }}</style>
</head>
<body>
<main>
<h1>{{ doc.title }}</h1>
<p>{{ doc.intro }}</p>
<p class="muted">{{ doc.exported_at }}. {{ doc.time_zone_note }}</p>
<nav><h2>{{ doc.words.contents }}</h2><ol>
{%- for section in doc.sections %}<li><a href="#{{ section.source }}">{{ section.title }}</a></li>{% endfor -%}
</ol></nav>
{%- for section in doc.sections %}
<section id="{{ section.source }}" data-source="{{ section.source }}">
<h2>{{ section.title }}</h2>
<p>{{ section.about }}</p>
<p><strong>{{ doc.words.why }}:</strong> {{ section.why }}</p>
<p><strong>{{ doc.words.kept }}:</strong> {{ section.kept }}</p>
{%- for entry in section.entries %}{{ show(entry, "entry") }}{% else %}
<p class="muted">{{ doc.words.none }}</p>
{%- endfor %}
</section>
{%- endfor %}
</main>
</body>
</html>
"""

ENTRY = """{% macro show(entry, kind) -%}
<div class="{{ kind }}">
<h3>{{ entry.heading }}</h3>
<dl>
{%- for field in entry.fields %}
<dt>{{ field.label }}</dt><dd>{{ field.value }}{% if field.about %}<small>{{ field.about }}</small>{% endif %}</dd>
{%- endfor %}
</dl>
{%- for part in entry.parts %}{{ show(part, "part") }}{% endfor %}
{%- if entry.also_stored %}
<p class="muted">{{ also_stored }}: {{ entry.also_stored | join(separator) }}</p>
{%- endif %}
</div>
{%- endmacro %}"""

_ENVIRONMENT = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
_PAGE = _ENVIRONMENT.from_string(ENTRY + TEMPLATE)
STYLE_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'"
# Nothing but the one style element: no script, no image, no font, no form, no frame, no base. The file's
# meta element says the same but frame-ancestors, which only a header can say.
META_POLICY = f"default-src 'none'; style-src {STYLE_HASH}; base-uri 'none'; form-action 'none'"
POLICY = f"{META_POLICY}; frame-ancestors 'none'"


def page(doc: ReadableExport) -> str:
    """The whole HTML file of `doc`."""
    return _PAGE.render(doc=doc, style=Markup(STYLE), policy=META_POLICY, also_stored=doc.words["also_stored"],
                        separator=doc.words["separator"])


def readable_page(document: dict[str, Any], *, settings: Settings, locale: str, zone_name: str | None,
                  product: str) -> str:
    """The readable copy of `document` (flows.readable_export) as its whole HTML file."""
    return page(readable(document, settings=settings, locale=locale, zone_name=zone_name, product=product))

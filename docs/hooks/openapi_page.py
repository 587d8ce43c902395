"""MkDocs hook: docs/reference/openapi.md shows the operations and schemas of docs/reference/openapi.json.

The page keeps its own introduction; the line `<!-- openapi-operations -->` in it becomes, at build time,
one section per URL prefix (each operation's parameters, request body and responses) and the schemas.
The JSON file is the copy tests/citylogin/cli/test_openapi_copy.py holds equal to the live GET /openapi.json."""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.pages import Page

PAGE = "reference/openapi.md"
DOCUMENT = "reference/openapi.json"
MARKER = "<!-- openapi-operations -->"
REF_PREFIX = "#/components/schemas/"
METHOD_ORDER = ["get", "post", "put", "patch", "delete"]
# A heading per URL prefix, in the order a reader meets them; any other prefix follows, by name.
PREFIXES = {"registration": "Registration", "device": "Devices", "account": "Account", "login": "Login",
            "session": "Sessions", "ssf": "Security events for apps", "oidc": "OpenID Provider",
            "admin": "Operators (admin API)"}
OTHER = "Operational and discovery"
SECURITY = {"bearer": "Bearer access token", "app": "the app's HTTP Basic credentials"}


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **_: Any) -> str:
    if page.file.src_uri != PAGE:
        return markdown
    path = Path(config["docs_dir"]) / DOCUMENT
    document = json.loads(path.read_text(encoding="utf-8"))
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} has lost its line {MARKER}")
    return markdown.replace(MARKER, render(document))


def render(document: dict[str, Any]) -> str:
    """The markdown of the whole reference: the operations by prefix, then the schemas."""
    parts = []
    for title, operations in grouped(document["paths"]).items():
        parts.append(f"## {title}\n")
        parts.extend(render_operation(method, path, op) for path, method, op in operations)
    parts.append("## Schemas\n")
    schemas = document.get("components", {}).get("schemas", {})
    parts.extend(render_schema(name, schema) for name, schema in sorted(schemas.items()))
    return "\n".join(parts)


def grouped(paths: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """{section title: [(path, method, operation)]}, sections in PREFIXES order, then the rest."""
    groups: dict[str, list[tuple[str, str, dict[str, Any]]]] = {title: [] for title in PREFIXES.values()}
    for path in sorted(paths):
        prefix = path.strip("/").split("/")[0]
        title = PREFIXES.get(prefix, OTHER)
        for method in sorted(paths[path], key=lambda m: (METHOD_ORDER + [m]).index(m)):
            groups.setdefault(title, []).append((path, method, paths[path][method]))
    return {title: found for title, found in groups.items() if found}


def render_operation(method: str, path: str, op: dict[str, Any]) -> str:
    lines = [f"### `{method.upper()} {path}`\n", f"{op.get('summary', '')}\n"]
    if op.get("security"):
        lines.append(f"**Authentication:** {security(op['security'])}\n")
    if op.get("parameters"):
        lines += ["**Parameters**\n", "| name | in | required | type | description |", "|---|---|---|---|---|"]
        lines += [f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                  f"{type_of(p.get('schema', {}))} | {cell(p.get('description', ''))} |" for p in op["parameters"]]
        lines.append("")
    if body := op.get("requestBody"):
        required = "required" if body.get("required") else "optional"
        for media, content in body.get("content", {}).items():
            lines.append(f"**Request body** ({required}, `{media}`): {type_of(content.get('schema', {}))}\n")
    lines += ["**Responses**\n", "| status | description | body |", "|---|---|---|"]
    for status, response in sorted(op.get("responses", {}).items()):
        bodies = ", ".join(f"`{media}` {type_of(c.get('schema', {}))}"
                           for media, c in response.get("content", {}).items())
        headers = ", ".join(f"`{name}`" for name in response.get("headers", {}))
        description = cell(response.get("description", "")) + (f" (headers: {headers})" if headers else "")
        lines.append(f"| {status} | {description} | {bodies} |")
    return "\n".join(lines) + "\n"


def security(requirements: list[dict[str, Any]]) -> str:
    """`[{"bearer": []}]` as words; an empty requirement among them makes the rest optional."""
    named = [SECURITY.get(name, name) for requirement in requirements for name in requirement]
    optional = any(not requirement for requirement in requirements)
    return " or ".join(named) + (" (optional)" if optional else "")


def render_schema(name: str, schema: dict[str, Any]) -> str:
    lines = [f"### {name} {{#{anchor(name)}}}\n"]
    if schema.get("description"):
        lines.append(f"{cell(schema['description'])}\n")
    properties = schema.get("properties", {})
    if not properties:
        lines.append(f"{type_of(schema)}\n")
        return "\n".join(lines)
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    lines += [f"| `{field}` | {type_of(definition)} | {'yes' if field in required else 'no'} | "
              f"{cell(described(definition))} |" for field, definition in properties.items()]
    return "\n".join(lines) + "\n"


def anchor(name: str) -> str:
    return f"schema-{name.lower()}"


def type_of(schema: dict[str, Any]) -> str:
    """A JSON schema as a short markdown phrase: `string`, an array of a linked schema, `a` or `b`."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF_PREFIX)
        return f"[{name}](#{anchor(name)})"
    if "anyOf" in schema:
        return " or ".join(type_of(variant) for variant in schema["anyOf"])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {type_of(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {type_of(schema['additionalProperties'])}"
    return f"`{kind}`" + (f" ({schema['format']})" if "format" in schema else "")


def described(schema: dict[str, Any]) -> str:
    """A property's description and its limits (length, range, pattern, default)."""
    limits = [f"{label} {schema[key]}" for key, label in (
        ("minLength", "min length"), ("maxLength", "max length"), ("minimum", "min"), ("maximum", "max"),
        ("maxItems", "max items")) if key in schema]
    if "pattern" in schema:   # as HTML: a table cell would keep the backslash of `\|` in a code span
        limits.append(f"pattern <code>{html.escape(schema['pattern']).replace('|', '&#124;')}</code>")
    if schema.get("default") is not None:
        limits.append(f"default `{json.dumps(schema['default'])}`")
    text = schema.get("description", "")
    return "; ".join(filter(None, [text, ", ".join(limits)]))


def cell(text: str) -> str:
    """Text fit for one table cell: one line, its pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")

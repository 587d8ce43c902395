"""A person's data export as the caller asked for it (GET /account/export, POST /admin/accounts/<user_uuid>/export):
the machine-readable JSON document as a file to save (the default), its readable copy as a printable HTML file
(`?format=html`, or `Accept: text/html` without a format), or the readable copy as JSON (`?format=readable`,
what the web UI's page shows). Never cached: it is all of a person's data."""
from __future__ import annotations

from typing import Any

from flask import Response, json, jsonify, request

from flows import readable_html
from flows.models import ExportQuery
from flows.readable_export import readable
from common.runtime.context import ctx
from common.web.validation import parse_model

JSON, HTML = "application/json", "text/html"


def export_query() -> ExportQuery:
    """The format and time zone asked for, checked before anything is read (or, for an operator, audited)."""
    return parse_model(ExportQuery, request.args.to_dict())


def delivered(document: dict[str, Any], query: ExportQuery) -> Response:
    """`document` in the format `query` (or else the Accept header) asks for."""
    chosen = query.format or ("html" if request.accept_mimetypes.best_match([JSON, HTML], default=JSON) == HTML
                              else "json")
    if chosen == "json":
        response = attachment(json.dumps(document, ensure_ascii=False, indent=1), document, suffix="json",
                              mimetype=JSON)
    else:
        locale = query.locale or document["users"][0].get("locale", "en")  # the page's, else the account's
        copy = readable(document, settings=ctx().settings, locale=locale, zone_name=query.time_zone,
                        product=ctx().brand.name)
        if chosen == "html":
            response = attachment(readable_html.page(copy), document, suffix="html", mimetype=HTML)
            response.headers["Content-Security-Policy"] = readable_html.POLICY
        else:
            response = jsonify(copy.model_dump())
            response.headers["Cache-Control"] = "no-store"
    if query.format is None:
        response.vary.add("Accept")
    return response


def attachment(body: str, document: dict[str, Any], *, suffix: str, mimetype: str) -> Response:
    """`body` as an attachment named for the product (the brand's, "citylogin" unbranded) and its day."""
    name = "-".join(filter(None, [ctx().brand.file_stem, "data", document["exported_at"][:10]])) + f".{suffix}"
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

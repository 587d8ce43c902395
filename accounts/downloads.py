"""A person's data export as the caller asked for it (GET /account/export, POST /admin/accounts/<user_uuid>/export):
the machine-readable JSON document as a file to save (the default), its readable copy as a printable HTML file
(`?format=html`, or `Accept: text/html` without a format), or the readable copy as JSON (`?format=readable`,
what the web UI's page shows). Never cached: it is all of a person's data. The readable copy is the flows'
to make (it names what every domain keeps, and why): the blueprint hands in its ReadableCopies."""
from __future__ import annotations

from typing import Any, Protocol

from flask import Response, json, jsonify, request
from pydantic import BaseModel

from accounts.models import ExportQuery
from common.config import Settings
from common.runtime.context import ctx
from common.web.validation import parse_model

JSON, HTML = "application/json", "text/html"


class ReadableCopies(Protocol):
    """The readable copy of a data export, made by the flows above accounts/ (flows.readable_export,
    flows.readable_html): as JSON, or as a printable HTML file under its own Content-Security-Policy."""

    READABLE_PAGE_POLICY: str

    def readable_copy(self, document: dict[str, Any], *, settings: Settings, locale: str, zone_name: str | None,
                      product: str) -> BaseModel:
        """The copy, to send as JSON."""

    def readable_page(self, document: dict[str, Any], *, settings: Settings, locale: str, zone_name: str | None,
                      product: str) -> str:
        """The copy as its whole HTML file."""


def export_query() -> ExportQuery:
    """The format and time zone asked for, checked before anything is read (or, for an operator, audited)."""
    return parse_model(ExportQuery, request.args.to_dict())


def delivered(document: dict[str, Any], query: ExportQuery, copies: ReadableCopies) -> Response:
    """`document` in the format `query` (or else the Accept header) asks for."""
    chosen = query.format or ("html" if request.accept_mimetypes.best_match([JSON, HTML], default=JSON) == HTML
                              else "json")
    if chosen == "json":
        response = attachment(json.dumps(document, ensure_ascii=False, indent=1), document, suffix="json",
                              mimetype=JSON)
    else:
        locale = query.locale or document["users"][0].get("locale", "en")  # the page's, else the account's
        settings, zone, product = ctx().settings, query.time_zone, ctx().brand.name
        if chosen == "html":
            page = copies.readable_page(document, settings=settings, locale=locale, zone_name=zone, product=product)
            response = attachment(page, document, suffix="html", mimetype=HTML)
            response.headers["Content-Security-Policy"] = copies.READABLE_PAGE_POLICY
        else:
            copy = copies.readable_copy(document, settings=settings, locale=locale, zone_name=zone, product=product)
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

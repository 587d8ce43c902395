"""A person's data export as a file to save (GET /account/export, POST /admin/accounts/<user_uuid>/export)."""
from __future__ import annotations

from typing import Any

from flask import Response, json

from web.context import ctx


def attachment(document: dict[str, Any]) -> Response:
    """The document as an attachment named for the product (the brand's, "citylogin" unbranded) and its day,
    never cached (it is all of a person's data)."""
    name = "-".join(filter(None, [ctx().brand.file_stem, "data", document["exported_at"][:10]])) + ".json"
    return Response(json.dumps(document, ensure_ascii=False, indent=1), mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})

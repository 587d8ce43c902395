"""docs/reference/openapi.json, the document the site's OpenAPI page is rendered from, is exactly what the
all-in-one app serves at GET /openapi.json (refresh it with `python -m citylogin.cli.openapi_copy`)."""
from __future__ import annotations

import json

from citylogin.app import create_app
from citylogin.cli.openapi_copy import COPY, as_text


def test_the_copy_equals_the_live_document(dynamodb_endpoint, data_dir, table_prefix):
    app = create_app({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": str(data_dir),
                      "table_prefix": table_prefix, "log_level": "WARNING", "deletion_sweep_interval": 0,
                      "ssf_push_interval": 0, "session_sweep_interval": 0})
    live = app.test_client().get("/openapi.json").get_json()
    assert live["paths"]
    assert json.loads(COPY.read_text(encoding="utf-8")) == live, (
        "docs/reference/openapi.json differs from GET /openapi.json: "
        "run .venv/bin/python -m citylogin.cli.openapi_copy")
    assert COPY.read_text(encoding="utf-8") == as_text(live)   # and it is written as the script writes it

"""Refresh docs/reference/openapi.json, the site's copy of the all-in-one app's GET /openapi.json:

    .venv/bin/python -m citylogin.cli.openapi_copy

It starts the app on a throwaway in-memory DynamoDB Local, asks it for the document and writes it
pretty-printed with sorted keys (tests/citylogin/cli/test_openapi_copy.py holds the copy equal to the live one)."""
from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

COPY = Path(__file__).resolve().parents[2] / "docs" / "reference" / "openapi.json"


def as_text(document: dict[str, Any]) -> str:
    """The copy's exact text: two-space indents, sorted keys, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def live_document() -> dict[str, Any]:
    """What GET /openapi.json answers on the all-in-one app (no background threads, nothing kept)."""
    from citylogin.app import create_app
    from common.database.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal() as local, tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"dynamodb_endpoint_url": local.endpoint_url, "data_dir": data_dir,
                          "log_level": "WARNING", "deletion_sweep_interval": 0, "ssf_push_interval": 0,
                          "session_sweep_interval": 0, "key_encryption_key": _throwaway_key()})
        answer = app.test_client().get("/openapi.json")
        assert answer.status_code == 200, answer.status_code
        return answer.get_json()


def _throwaway_key() -> str:
    # The key ring of this run is thrown away with its DynamoDB Local: no key file, no warning about one.
    return base64.b64encode(os.urandom(32)).decode()


def main() -> int:
    COPY.write_text(as_text(live_document()), encoding="utf-8")
    print(f"wrote {COPY.relative_to(Path.cwd()) if COPY.is_relative_to(Path.cwd()) else COPY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

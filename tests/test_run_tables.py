"""A module's tables go with the module (tests/support/tables.py): `drop` stops the threads of the apps
built on the prefix, deletes every table of the prefix and nothing of another, and an app built on
the prefix again finds its tables made anew."""
from __future__ import annotations

import uuid

import pytest

from citylogin.app import create_app
from common.database import dynamo
from tests.conftest import _RUN_TABLES, app_settings


def names_on(endpoint: str, prefix: str) -> set[str]:
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, local=True, read_timeout=30)
    pages = client.get_paginator("list_tables").paginate()
    return {name for page in pages for name in page["TableNames"] if name.startswith(prefix)}


def test_drop_stops_the_prefixs_apps_and_deletes_its_tables_alone(request, dynamodb_endpoint, data_dir):
    tables = request.config.stash[_RUN_TABLES]
    gone, kept = f"d{uuid.uuid4().hex[:8]}_", f"k{uuid.uuid4().hex[:8]}_"
    app = create_app(app_settings(dynamodb_endpoint, data_dir, gone))
    other = create_app(app_settings(dynamodb_endpoint, data_dir, kept))
    ctx, other_ctx = app.extensions["citylogin"], other.extensions["citylogin"]
    expected = set(dynamo.TableNames.with_prefix(gone).all())
    assert names_on(dynamodb_endpoint, gone) == expected
    ctx.ring_refresher.start()
    other_ctx.ring_refresher.start()

    tables.drop(gone)

    assert names_on(dynamodb_endpoint, gone) == set()
    assert names_on(dynamodb_endpoint, kept) == set(dynamo.TableNames.with_prefix(kept).all())
    assert ctx.ring_refresher._stop.is_set() and not other_ctx.ring_refresher._stop.is_set()
    again = create_app(app_settings(dynamodb_endpoint, data_dir, gone))  # not remembered as made any more
    assert names_on(dynamodb_endpoint, gone) == expected
    assert again.test_client().get("/readyz").status_code == 200
    tables.drop(kept)
    tables.drop(gone)
    assert names_on(dynamodb_endpoint, gone) | names_on(dynamodb_endpoint, kept) == set()


SEEN: list[str] = []  # this module's table_prefix, for the check after the module


@pytest.fixture(scope="module", autouse=True)
def _the_modules_tables_are_gone_after_it(dynamodb_endpoint):
    """Set up before table_prefix and so undone after it: by then the module's tables are deleted (on the
    worker that ran the test below, which SEEN the prefix)."""
    yield
    for prefix in SEEN:
        assert names_on(dynamodb_endpoint, prefix) == set(), prefix


def test_the_modules_prefix_has_its_tables_while_the_module_runs(dynamodb_endpoint, data_dir, table_prefix):
    SEEN.append(table_prefix)
    create_app(app_settings(dynamodb_endpoint, data_dir, table_prefix))
    assert names_on(dynamodb_endpoint, table_prefix) == set(dynamo.TableNames.with_prefix(table_prefix).all())

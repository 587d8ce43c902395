"""The tables of a prefix made once per test process on the run's DynamoDB Local.

Every app a test builds starts with common.database.dynamo.ensure_tables: a ListTables and, for each of the
tables that exist, a DescribeTable (an index a table made by an older version lacks). A test module
builds many apps on its one prefix, and after the first start of a prefix in this process each of
those 18 calls only finds what the first made: 40 ms of the test process's CPU and 45 ms of DynamoDB
Local's per app. Only tables on the run's own DynamoDB Local are remembered: nothing else deletes them
there (a test that deletes a table does it on a prefix of its own and starts no app on it again)."""
from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from common.database import dynamo


@contextmanager
def tables_made_once(endpoint_url: str) -> Iterator[None]:
    """While it lasts, dynamo.ensure_tables on `endpoint_url` does its work once per set of table names."""
    made: set[dynamo.TableNames] = set()
    lock = threading.Lock()
    ensure = dynamo.ensure_tables

    @functools.wraps(ensure)
    def ensure_tables(client: Any, names: dynamo.TableNames) -> list[str]:
        if client.meta.endpoint_url != endpoint_url:
            return ensure(client, names)
        with lock:
            if names in made:
                return []  # all there: none created now
        created = ensure(client, names)
        with lock:
            made.add(names)
        return created

    dynamo.ensure_tables = ensure_tables
    try:
        yield
    finally:
        dynamo.ensure_tables = ensure

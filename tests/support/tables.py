"""The table sets of this test process on the run's DynamoDB Local: each made once, and each module's
dropped when the module ends.

Made once: every app a test builds starts with common.database.dynamo.ensure_tables: a ListTables and, for
each of the tables that exist, a DescribeTable (an index a table made by an older version lacks). A test
module builds many apps on its one prefix, and after the first start of a prefix in this process each of
those 18 calls only finds what the first made: 40 ms of the test process's CPU and 45 ms of DynamoDB
Local's per app. Only tables on the run's own DynamoDB Local are remembered.

Dropped with the module: DynamoDB Local's own background jobs (the one that moves indexes from CREATING to
ACTIVE, the one that looks for a TTL to apply) read and parse the description of every table it holds,
over and over, in its one SQLite thread: an idle engine of 2,550 tables spent 20% of a core on them (0.7%
once 2,533 of them were deleted), and a CreateTable costs more the more tables there are. The whole suite
makes about 450 sets of 17, so each module's set is deleted once its last test is done (`drop`), after
the threads of the apps built on it are stopped: left running, they would read the deleted tables and
log their failures into a later test's log."""
from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError

from common.database import dynamo
from common.runtime.context import AppContext


class RunTables:
    """The run's DynamoDB Local at `endpoint_url` as this test process uses it."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._made: set[dynamo.TableNames] = set()
        self._lock = threading.Lock()
        self._contexts: list[weakref.ref[AppContext]] = []

    def ensure_tables(self, ensure: Any, client: Any, names: dynamo.TableNames) -> list[str]:
        """dynamo.ensure_tables, whose work on this endpoint is done once per set of table names."""
        if client.meta.endpoint_url != self.endpoint_url:
            return ensure(client, names)
        with self._lock:
            if names in self._made:
                return []  # all there: none created now
        created = ensure(client, names)
        with self._lock:
            self._made.add(names)
        return created

    def built(self, context: AppContext) -> None:
        """An app context was built in this process (it may be on this endpoint)."""
        with self._lock:
            self._contexts = [ref for ref in self._contexts if ref() is not None]
            self._contexts.append(weakref.ref(context))

    def drop(self, prefix: str) -> None:
        """Stop the background threads of the apps built on `prefix` here, then delete its tables."""
        from tests.support.live import stop_background
        with self._lock:
            contexts = [c for c in (ref() for ref in self._contexts) if c is not None and self._on(c, prefix)]
            self._made = {names for names in self._made if not names.users.startswith(prefix)}
        for context in contexts:
            stop_background(context)
        client = dynamo.make_client(region="us-east-1", endpoint_url=self.endpoint_url, local=True,
                                    read_timeout=30, max_attempts=3)
        with contextlib.suppress(BotoCoreError, ClientError):  # what a test left broken stays its own failure
            for page in client.get_paginator("list_tables").paginate():
                for name in page["TableNames"]:
                    if name.startswith(prefix):
                        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                            client.delete_table(TableName=name)

    def _on(self, context: AppContext, prefix: str) -> bool:
        settings = context.settings
        return settings.table_prefix == prefix and settings.dynamodb_endpoint_url == self.endpoint_url


@contextmanager
def run_tables(endpoint_url: str) -> Iterator[RunTables]:
    """While it lasts, dynamo.ensure_tables on `endpoint_url` does its work once per set of table names,
    and every AppContext built in this process is known to the RunTables yielded."""
    tables = RunTables(endpoint_url)
    ensure, init = dynamo.ensure_tables, AppContext.__init__

    @functools.wraps(ensure)
    def ensure_tables(client: Any, names: dynamo.TableNames) -> list[str]:
        return tables.ensure_tables(ensure, client, names)

    @functools.wraps(init)
    def built(self: AppContext, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        tables.built(self)

    dynamo.ensure_tables, AppContext.__init__ = ensure_tables, built  # type: ignore[method-assign]
    try:
        yield tables
    finally:
        dynamo.ensure_tables, AppContext.__init__ = ensure, init  # type: ignore[method-assign]

"""A small per-app thread pool for I/O that can overlap a request's own work (e.g. reads made
while Argon2id hashes, which releases the GIL)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from common.runtime.context import AppContext

_lock = threading.Lock()


def background(ctx: AppContext) -> ThreadPoolExecutor:
    with _lock:
        if ctx.background_pool is None:
            ctx.background_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="citylogin-io")
        return ctx.background_pool

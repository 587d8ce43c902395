"""What the server running this process says about itself: citylogin's gunicorn worker
(citylogin/gunicorn_worker.py) records its request threads here before it loads the app, so that
caps on thread-holding work (open event streams) can leave threads for ordinary requests."""
from __future__ import annotations

_request_threads: int | None = None


def set_request_threads(count: int) -> None:
    global _request_threads
    _request_threads = count


def request_threads() -> int | None:
    """The threads that serve requests in this process, or None when unbounded or unknown
    (Flask's threaded server starts one per connection)."""
    return _request_threads

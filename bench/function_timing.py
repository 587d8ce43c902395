"""Thread CPU of chosen functions, in whichever process runs them (issue 87): `bench/profile_row.py --time` in its own
process, and `bench/served_costs.py` inside gunicorn's workers (bench/served_timing_conf.py).

A wrapper adds up `time.thread_time()` around each call of MODULE:FUNCTION (or MODULE:Class.method) on the thread
that runs it (the background pool's too) and counts the calls. A module-level function is wrapped where it is
defined: a caller that imported it by name keeps the original (wrap it as caller_module:name). A wrapper costs
about a microsecond a call; a function that calls another wrapped one includes that one's time and wrapper."""
from __future__ import annotations

import importlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

Totals = dict[str, list[float]]  # {name: [thread CPU seconds, calls]}


def timed_functions(names: list[str]) -> Totals:
    """Wrap each name; the totals, updated as the wrapped functions run."""
    totals: Totals = {}
    for name in names:
        module_name, _, attribute = name.partition(":")
        owner: Any = importlib.import_module(module_name)
        *path, last = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        inner, total = getattr(owner, last), totals.setdefault(name, [0.0, 0])

        def wrapper(*args: Any, _inner: Callable[..., Any] = inner, _total: list[float] = total,
                    **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return _inner(*args, **kwargs)
            finally:
                _total[0] += time.thread_time() - started
                _total[1] += 1
        setattr(owner, last, wrapper)
    return totals


def answer_snapshots(totals: Totals, directory: Path, *, every: float = 0.1) -> threading.Thread:
    """A daemon thread that, for each `ask-N` file that appears in `directory`, writes this process's totals
    to `<pid>-N.json` (how bench/served_costs.py reads a gunicorn worker's figures before and after a block)."""
    def run() -> None:
        answered: set[str] = set()
        while True:
            for ask in sorted(directory.glob("ask-*")):
                if ask.name not in answered:
                    snapshot = {name: list(total) for name, total in totals.items()}
                    target = directory / f"{os.getpid()}-{ask.name.removeprefix('ask-')}.json"
                    target.with_suffix(".tmp").write_text(json.dumps(snapshot))
                    target.with_suffix(".tmp").rename(target)
                    answered.add(ask.name)
            time.sleep(every)
    thread = threading.Thread(target=run, name="bench-function-timing", daemon=True)
    thread.start()
    return thread

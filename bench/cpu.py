"""CPU time of process trees, read from /proc (Linux), to say where a request's CPU goes under load:
the gunicorn workers, DynamoDB Local (Java) or this process (the load generator)."""
from __future__ import annotations

import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, utime + stime in clock ticks) for every process we can read."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path("/proc", entry.name, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = raw.rsplit(")", 1)[1].split()  # the command name may contain spaces
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def _tree(table: dict[int, tuple[int, int]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def tree_pids(root: int) -> list[int]:
    """`root` and every process below it, as /proc has them now."""
    return _tree(_process_table(), root)


def tree_cpu_seconds(root_pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process and its descendants, plus "loadgen" (this process)."""
    out = {"loadgen": time.process_time()}
    if not Path("/proc/self/stat").exists():
        return out
    table = _process_table()
    for name, root in root_pids.items():
        out[name] = sum(table.get(pid, (0, 0))[1] for pid in _tree(table, root)) / _TICKS
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}

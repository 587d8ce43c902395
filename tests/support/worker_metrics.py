"""What each gunicorn worker counted, read from its own file of samples under PROMETHEUS_MULTIPROC_DIR:
which worker the kernel handed a connection is not the test's to choose, so a test that needs both
workers to answer sends requests until each file shows some."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector


def answered_by(metrics_dir: Path, route: str, pids: set[int] | None = None) -> dict[int, float]:
    """{worker pid: requests to `route` it counted}, for the pids given or for every worker's file."""
    if pids is None:
        pids = {int(path.stem.split("_")[-1]) for path in metrics_dir.glob("counter_*.db")}
    answered = {}
    for pid in pids:
        samples = metrics_dir / f"counter_{pid}.db"
        if not samples.exists():  # a worker writes it with its first count
            answered[pid] = 0.0
            continue
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(samples, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            answered[pid] = sum(s.value for family in registry.collect() for s in family.samples
                                if s.name == "citylogin_http_requests_total" and s.labels["route"] == route)
    return answered

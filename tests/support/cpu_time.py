"""What a call costs this process in CPU time, for tests that compare costs: CPU, not wall time, so that other
processes' load (the suite at 80% busy) does not count."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def cpu_median(call: Callable[[], Any], times: int = 5) -> float:
    """Median CPU seconds of `call` over `times` calls."""
    samples = []
    for _ in range(times):
        start = time.process_time()
        call()
        samples.append(time.process_time() - start)
    return statistics.median(samples)

"""citylogin_dynamodb_calls_total from a GET /metrics text, as calls per operation. No sibling
imports: bench/dynamo_calls.py, bench/streams.py and the tests use it."""
from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

CALLS_SAMPLE = "citylogin_dynamodb_calls_total"
REQUEST = "request"  # the label value of a request's calls (and the writes it leaves for after its answer)


def dynamodb_calls_from_text(text: str, *, requests_only: bool = True) -> Counter:
    """operation -> calls, summed over the samples (every worker's, in multiprocess mode).
    `requests_only`: a server that labels each call with `source` ("request", or "scheduled" for its
    own pollers: the key ring, the app registry, the feeds) counts only source="request"; a server
    without the label (an older checkout) counts every call. False: every call of every source."""
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == CALLS_SAMPLE]
    labelled = any("source" in sample.labels for sample in samples)
    counts: Counter = Counter()
    for sample in samples:
        if requests_only and labelled and sample.labels.get("source") != REQUEST:
            continue
        counts[sample.labels.get("operation", "?")] += sample.value
    return counts

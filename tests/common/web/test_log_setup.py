"""The text log format (common.web.log_setup.TextFormatter, issue 66): each second's time formatted once, every
line the same as the stdlib's Formatter writes it."""
from __future__ import annotations

import logging

from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.web.log_setup import TEXT_FORMAT, TextFormatter

# Times up to 2100, with the milliseconds at and around a second's turn, and runs of lines in one second.
instants = st.one_of(st.floats(min_value=0, max_value=4.1e9, allow_nan=False),
                     st.integers(min_value=0, max_value=4_100_000_000).flatmap(
                         lambda s: st.sampled_from([s, s + 0.0005, s + 0.9995, s + 0.999999, s - 0.000001])))


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("citylogin.access", logging.INFO, __file__, 1, "GET %s 200", ("/healthz",), None)
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    return record


@settings(max_examples=300, deadline=None)
@given(st.lists(instants, min_size=1, max_size=20))
@example([-0.000001, 0.0, 0.9995, 1.0])
def test_each_line_is_the_stdlib_formatters_line(times):
    ours, stdlib = TextFormatter(), logging.Formatter(TEXT_FORMAT)
    for created in sorted(times) + times:  # in order, then as threads may interleave them
        record = _record(created)
        assert ours.format(record) == stdlib.format(record)

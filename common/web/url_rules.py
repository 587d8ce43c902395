"""URL rules whose URL builders are compiled once per process, not once per app.

When an app adds a rule, werkzeug writes two small functions that build the rule's URL (for `url_for`),
as Python syntax trees it then compile()s: about a third of the CPU of building an app of the ~116
rules here. Those functions depend only on the rule's text and parts, not on the app: they reach the
rule's converters through the rule they are bound to. So a rule without defaults takes the functions
an earlier rule of the same text and parts had compiled in this process: a test process builds
hundreds of apps, a server process one (there it saves nothing). A rule with defaults (a default is turned
into URL text at compile time, by the app's converters) is compiled as werkzeug does it.

Where a later werkzeug has no `_trace` on its rules, every rule is compiled as werkzeug does it."""
from __future__ import annotations

import threading
from typing import Any, Callable

from werkzeug.routing import Rule

_Builder = Callable[..., tuple[str, str]]
_BUILDERS: dict[tuple[Any, ...], _Builder] = {}
_LOCK = threading.Lock()


class BuilderCachingRule(Rule):
    """A werkzeug Rule whose two URL builders come from the process's cache when it has no defaults."""

    def _compile_builder(self, append_unknown: bool = True) -> _Builder:
        trace = getattr(self, "_trace", None)
        if self.defaults or trace is None:
            return super()._compile_builder(append_unknown)
        key = (self.rule, tuple(trace), append_unknown)
        with _LOCK:
            builder = _BUILDERS.get(key)
        if builder is None:
            builder = super()._compile_builder(append_unknown)
            with _LOCK:
                builder = _BUILDERS.setdefault(key, builder)
        return builder

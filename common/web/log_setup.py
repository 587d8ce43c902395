"""The process's log output: plain text for a terminal, or one JSON object per line
(CITYLOGIN_LOG_FORMAT=json) for a log collector; the audit stream optionally also to its own file."""
from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter

from common.config import LogFormat, Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
AUDIT_LOGGER = "citylogin.audit"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class PlainText(logging.Filter):
    """werkzeug colours its request lines whatever the output is; a file or a pipe gets them plain."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\x1b[" in message:
            record.msg, record.args = ANSI_ESCAPE.sub("", message), ()
        return True


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, with each second's local time formatted once (the stdlib's formatTime runs
    localtime and strftime for every line, about a fifth of an access line's cost)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int | None, str] = (None, "")  # no second formatted yet

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (stdlib's)
        if datefmt:
            return super().formatTime(record, datefmt)
        second = math.floor(record.created)  # as localtime() takes it, before 1970 too
        cached_second, text = self._second  # one tuple, read and replaced whole: safe across threads
        if cached_second != second:
            text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))  # the stdlib's default_time_format
            self._second = (second, text)
        return "%s,%03d" % (text, record.msecs)  # its default_msec_format


class JsonFormatter(_LibraryJsonFormatter):
    """time, level, logger, message and the record's `extra` fields; an audit record is written
    as its own fields (event, at, ...) instead of its message, which repeats them."""

    def __init__(self) -> None:
        super().__init__("{levelname}{name}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        entry = log_data.pop("audit", None)
        if isinstance(entry, dict):
            log_data.pop("message", None)
            log_data.update(entry)


def configure_logging(settings: Settings) -> None:
    """Root handler in the configured format (unless the host, e.g. pytest, installed one already),
    and the audit logger: always at INFO, and to CITYLOGIN_AUDIT_LOG if set."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format is LogFormat.JSON
                         else TextFormatter())
    if settings.log_format is LogFormat.JSON or not _is_terminal(handler.stream):
        handler.addFilter(PlainText())
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(logging.INFO)  # security events are kept whatever CITYLOGIN_LOG_LEVEL says
    if settings.audit_log:
        _add_audit_file(audit, settings.audit_log)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _add_audit_file(audit: logging.Logger, path: Path) -> None:
    target = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == target for h in audit.handlers):
        return  # a second app in the same process (tests, the standalone services) shares the file
    handler = logging.FileHandler(target, encoding="utf-8")  # append; one write() per line
    handler.setFormatter(logging.Formatter("%(message)s"))  # the message is the JSON line itself
    audit.addHandler(handler)

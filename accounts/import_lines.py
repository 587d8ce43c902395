"""The lines of a line-based import file (Auth0's NDJSON, CSV), each read with a cap: a line longer than it
is passed over without being held (a 2 GiB line costs what reading it costs, not 2 GiB of memory)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from accounts.import_rows import FileRefused, ImportRow, RefusalReason, RowRefusal

LINE_CAP = 1 << 20  # 1 MiB: a user's line is a few hundred bytes; Auth0's metadata allows some kilobytes
_SKIP_CHUNK = 1 << 20


@dataclass(frozen=True)
class Line:
    """Line `number` (from 1) of the file: its text without the line ending, or None when it was not
    UTF-8 (`too_long` False) or longer than the cap (`too_long` True)."""

    number: int
    text: str | None
    too_long: bool = False

    @property
    def where(self) -> str:
        return f"line {self.number}"


def capped_lines(stream: BinaryIO, *, cap: int = LINE_CAP) -> Iterator[Line]:
    """Every line of `stream`, blank ones included (the numbers are the file's own); a UTF-8 byte order
    mark before the first is dropped (spreadsheets write one)."""
    number = 0
    while chunk := stream.readline(cap + 1):
        number += 1
        if len(chunk) > cap and not chunk.endswith(b"\n"):  # cap bytes and its "\n" still fit in cap + 1
            _skip_to_line_end(stream)
            yield Line(number, None, too_long=True)
            continue
        if number == 1 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        yield Line(number, _decoded(chunk))


def _skip_to_line_end(stream: BinaryIO) -> None:
    while chunk := stream.readline(_SKIP_CHUNK):
        if chunk.endswith(b"\n"):
            return


def _decoded(chunk: bytes) -> str | None:
    try:
        return chunk.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return None


def open_import_file(path: Path) -> BinaryIO:
    """The file opened for reading, or FileRefused in one line saying why it cannot be."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise FileRefused(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def line_refusal(line: Line, *, cap: int = LINE_CAP) -> RowRefusal | None:
    """The refusal of a line that is longer than the cap or not UTF-8; None for a line that is text."""
    if line.too_long:
        return RowRefusal(line.where, RefusalReason.LINE_TOO_LONG, f"longer than {cap} bytes: skipped unread")
    if line.text is None:
        return RowRefusal(line.where, RefusalReason.NOT_THE_FORMAT, "not UTF-8 text")
    return None


def line_rows(stream: BinaryIO, lines: Iterator[Line], read_line: Callable[[str, str], ImportRow | RowRefusal]
              ) -> Iterator[ImportRow | RowRefusal]:
    """Each line's row, by `read_line(where, text)`, or its refusal; blank lines skipped; `stream` closed at
    the end (or when the reader is dropped)."""
    with stream:
        for line in lines:
            if (refusal := line_refusal(line)) is not None:
                yield refusal
            elif line.text and line.text.strip():
                yield read_line(line.where, line.text)

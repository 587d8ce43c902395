"""The per-class half of the invariant checker (SPEC §5): from the session records alone, how many
live sessions of one class a user had at any moment. A session counts under the class it logged in
with (`device_class`) until its device was relabelled (`class_changes`, stamped like revoked_at)."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

from common.timefmt import parse_iso


def _epoch(text: str) -> int:
    return int(parse_iso(text).timestamp())


def class_pieces(session: Mapping, start: int, end: int) -> list[tuple[str, int, int]]:
    """(class, from, to) of one session live over [start, end), cut where its device was relabelled."""
    points = [(start, session.get("device_class", "other"))]
    points += [(_epoch(change["at"]), change["device_class"]) for change in session.get("class_changes") or []]
    pieces = []
    for (begin, device_class), (until, _) in zip(points, [*points[1:], (end, "")], strict=True):
        if min(until, end) > max(begin, start):
            pieces.append((device_class, max(begin, start), min(until, end)))
    return pieces


def most_at_once(spans: Iterable[tuple[int, int]]) -> int:
    """The largest number of half-open [start, end) spans that share a moment."""
    events = sorted([(s, 1) for s, e in spans if e > s] + [(e, -1) for s, e in spans if e > s])
    most = current = 0
    for _, change in events:
        current += change
        most = max(most, current)
    return most


def class_violations(sessions: Mapping[str, Mapping], intervals: Iterable[tuple[str, str, str, int, int]],
                     class_limits: Mapping[str, int]) -> list[str]:
    """Users that had more live sessions of a class at once than its limit. `sessions` by id;
    `intervals` are (user, device, session, start, end) of each session's life."""
    spans: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for user, _, session_id, start, end in intervals:
        for device_class, begin, until in class_pieces(sessions[session_id], start, end):
            spans[(user, device_class)].append((begin, until))
    return [f"user {user}: {n} live {device_class} sessions at once (limit {class_limits[device_class]})"
            for (user, device_class), pieces in spans.items()
            if class_limits.get(device_class) and (n := most_at_once(pieces)) > class_limits[device_class]]

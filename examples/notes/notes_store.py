"""The notes, kept per user (the access token's `sub`) in this process's memory: an example's store.
A real app keeps them in its own database; nothing here knows about citylogin."""
from __future__ import annotations

import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class Note:
    id: str
    text: str
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class NoteStore:
    """Each user's notes, oldest first. Thread-safe: the server answers on several threads."""

    def __init__(self) -> None:
        self._notes: dict[str, list[Note]] = {}
        self._lock = threading.Lock()

    def notes_of(self, user_uuid: str) -> list[Note]:
        with self._lock:
            return list(self._notes.get(user_uuid, ()))

    def add(self, user_uuid: str, text: str) -> Note:
        note = Note(id=uuid.uuid4().hex, text=text, created_at=datetime.now(timezone.utc).isoformat())
        with self._lock:
            self._notes.setdefault(user_uuid, []).append(note)
        return note

    def delete(self, user_uuid: str, note_id: str) -> bool:
        """Whether the user had that note."""
        with self._lock:
            notes = self._notes.get(user_uuid, [])
            kept = [note for note in notes if note.id != note_id]
            self._notes[user_uuid] = kept
            return len(kept) < len(notes)

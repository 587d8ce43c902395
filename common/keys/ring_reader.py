"""What a running process holds of the key ring: the last read, re-read from DynamoDB on a schedule
(common.keys.ring_refresher), when a key ring user asks (every CITYLOGIN_KEY_RING_RELOAD_SECONDS, whether
the process signs or only verifies) or at once for an unknown kid."""
from __future__ import annotations

import logging
import threading
import time

from botocore.exceptions import BotoCoreError, ClientError

from common.config import ConfigError
from common.log_bursts import BurstLog
from common.keys.jwt_keys import newest_published
from common.keys.ring import REFRESH, RingContents, read_ring
from common.keys.ring_store import STATE_RETIRED, KeyRingStore

log = logging.getLogger(__name__)

UNKNOWN_KID_RELOAD_SECONDS = 1.0  # an attacker's made-up kids cost at most one Query a second


class RingReader:
    """The ring as last read; a failed re-read keeps it (a DynamoDB hiccup must not stop signing).
    A retirement once seen stays: a key whose tombstone is later replaced is not taken back. Each
    contradiction is logged once (the start logged those of `contents`), not on every re-read."""

    def __init__(self, store: KeyRingStore, contents: RingContents) -> None:
        self._store = store
        self._retired = {entry.key_id for entry in contents.retired()}
        self._reported = set(contents.contradictions())
        self._contents = contents
        self._lock = threading.Lock()
        self._read_started = time.monotonic()
        self._failures = BurstLog(log)  # an outage fails every scheduled read: one line a minute

    @property
    def contents(self) -> RingContents:
        return self._contents

    def reload(self, *, max_age: float = 0.0) -> RingContents:
        """The ring re-read (one strongly consistent Query) unless a read began less than `max_age`
        seconds ago (0: after this call); the last read if that fails. Callers that queued behind a
        read share its answer: no Query per waiting thread."""
        wanted_since = time.monotonic() - max_age
        if self._read_started >= wanted_since:
            return self._contents
        with self._lock:
            if self._read_started < wanted_since:
                started = time.monotonic()
                self._contents = self._read() or self._contents
                self._read_started = started
            return self._contents

    def _read(self) -> RingContents | None:
        try:
            contents = read_ring(self._store, reported=self._reported)
        except (BotoCoreError, ClientError, ConfigError) as exc:
            self._failures.log(logging.WARNING, "key ring not re-read, keeping the keys read before: %s",
                               type(exc).__name__)
            return None
        self._retired |= {entry.key_id for entry in contents.retired()}
        taken_back = sorted(e.key_id for e in contents.entries
                            if e.key_id in self._retired and e.state != STATE_RETIRED)
        for key_id in taken_back:
            if key_id not in self._reported:
                self._reported.add(key_id)
                log.error("key ring item %s in %s was retired when this process read the ring and is back (the "
                          "ring as it was before, put back without the key-encryption key or from a backup): "
                          "still retired here", key_id, self._store.table)
        kept = contents.without(set(taken_back)) if taken_back else contents
        return kept if self._complete(kept) else None

    def _complete(self, contents: RingContents) -> bool:
        """Whether `contents` still has a key of each kind the last read had. No retirement leaves a kind
        without one; a ring that does (its items deleted, or only keys this process saw retired put back,
        without the key-encryption key) would leave nothing to sign or check with: the last read stays,
        said once."""
        lost = sorted(_active_kinds(self._contents) - _active_kinds(contents))
        if lost and f"lost#{lost}" not in self._reported:
            self._reported.add(f"lost#{lost}")
            log.error("the key ring in %s has no %s key left that this process may use (deleted, or put back as "
                      "it was before a retirement, without the key-encryption key): keeping the keys read before",
                      self._store.table, ", ".join(lost))
        return not lost


def _active_kinds(contents: RingContents) -> set[str]:
    return {entry.kind for entry in contents.entries if entry.state != STATE_RETIRED}


class RefreshSecrets:
    """The refresh-token secrets by kid: the newest makes new tokens, every one checks them."""

    def __init__(self, reader: RingReader, *, reload_seconds: float) -> None:
        self._reader, self._reload_seconds = reader, reload_seconds
        self._install(reader.contents)

    def _install(self, contents: RingContents) -> None:
        self._entries = contents.of(REFRESH)
        self._secrets = {entry.kid: entry.private for entry in self._entries}
        self._oldest_kid = self._entries[0].kid
        self._loaded_at = time.monotonic()

    def _reload(self, *, min_age: float, read_max_age: float = 0.0) -> None:
        if time.monotonic() - self._loaded_at >= min_age:
            self._install(self._reader.reload(max_age=read_max_age))

    def refresh(self, *, max_age: float) -> None:
        """Install the ring as read no longer than `max_age` seconds ago (0: read it now)."""
        self._reload(min_age=0, read_max_age=max_age)

    def newest_kid(self) -> str:
        """The kid new refresh tokens are made with: the newest secret that is a reload interval
        old, so every process already knows it (the ring is re-read once per interval)."""
        self._reload(min_age=self._reload_seconds, read_max_age=self._reload_seconds)
        return newest_published(self._entries, created_at=lambda entry: entry.created_at,
                                published_for=self._reload_seconds).kid

    def oldest_kid(self) -> str:
        """The secret of refresh tokens that name none (made before the key ring): the imported one."""
        return self._oldest_kid

    def get(self, kid: str) -> bytes | None:
        # every interval, whether or not this process makes refresh tokens: a retirement reaches it
        self._reload(min_age=self._reload_seconds, read_max_age=self._reload_seconds)
        if kid not in self._secrets:
            self._reload(min_age=UNKNOWN_KID_RELOAD_SECONDS)
        return self._secrets.get(kid)

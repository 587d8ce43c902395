"""Every process re-reads the key ring on a schedule, whether or not it signs, verifies or is asked
for its JWKS, so that a rotated key is published everywhere before any process signs with it (SPEC §10).

With R = CITYLOGIN_KEY_RING_RELOAD_SECONDS: each process re-reads the ring every R/3 (one Query,
shared by the JWT keys and the refresh secrets); the JWKS may be cached for R/3 (`Cache-Control`);
a new key signs once it is R old (common.keys.jwt_keys.newest_published). A key created at c is thus in
every process's JWKS by c + R/3 + d, and in every cached copy by c + 2R/3 + d, while the first token
it signs is made at c + R - s. That holds while d + s < R/3 (20 s by default), where d is the time
the rotation's write, one read and the thread's wake-up take, and s how far a signing host's clock
runs ahead of the rotating host's. A process that cannot read DynamoDB keeps the ring it read
last (common.keys.ring_reader) and cannot publish a key rotated meanwhile: the bound needs every
process to reach DynamoDB.
"""
from __future__ import annotations

import logging
import threading
import weakref

from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread
from common.keys.jwt_keys import JwtKeyRing
from common.keys.ring_reader import RefreshSecrets

log = logging.getLogger(__name__)

READS_PER_INTERVAL = 3  # R/3 between reads, R/3 of JWKS caching, R/3 of margin (above)
THREAD_NAME = "citylogin-key-ring-refresher"


def jwks_max_age(reload_seconds: float) -> int:
    """How long, in whole seconds, a JWKS may be cached (the module's docstring says why)."""
    return int(reload_seconds / READS_PER_INTERVAL)


class KeyRingRefresher:
    """Re-installs the key ring into the JWT key ring and the refresh secrets every reload interval/3
    from a daemon thread: it stops with the process, with stop(), or once nothing refers to it."""

    def __init__(self, *, jwt: JwtKeyRing, refresh_secrets: RefreshSecrets, reload_seconds: float) -> None:
        self._jwt, self._refresh_secrets = jwt, refresh_secrets
        self.period = reload_seconds / READS_PER_INTERVAL
        self._stop = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread once (an app may share its context with others)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        # The thread holds the refresher weakly: a test's app that is dropped takes its thread with it.
        weakref.finalize(self, self._stop.set)
        threading.Thread(target=_refresh_until, args=(weakref.ref(self), self._stop, self.period),
                         name=THREAD_NAME, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        """One read of the ring (one Query), installed for signing, verifying and the JWKS."""
        self._jwt.refresh(max_age=0)
        self._refresh_secrets.refresh(max_age=self.period)  # the read just made


def _refresh_until(refresher_ref: weakref.ref[KeyRingRefresher], stop: threading.Event, period: float) -> None:
    scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
    failures = BurstLog(log)
    while not stop.wait(period):
        refresher = refresher_ref()
        if refresher is None:
            return
        try:
            refresher.refresh()
        except Exception:  # noqa: BLE001 - logged; the next round tries again rather than the thread dying
            failures.log(logging.ERROR, "key ring refresh failed", exc_info=True)
        del refresher

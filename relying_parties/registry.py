"""This process's copy of the app registry (SPEC §14: every host pushes to an app added or changed a
moment ago, and answers CORS to a new SPA's origin, within a second), for the pushers (relying_parties.push) and
the CORS answers of the OpenID Provider (common.web.cors).

From its first use, one strongly consistent GetItem of the registry's version item every CHECK_SECONDS
per process; the whole list (one Query) is read again only when the version moved (every change of an
app bumps it in the change's own transaction, relying_parties.store) and at least every RELOAD_SECONDS (a record
changed by hand, or by a release from before the version item)."""
from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from relying_parties.models import AppRecord
from relying_parties.store import AppStore
from common.log_bursts import BurstLog
from common.slots import Slot
from common.thread_kind import scheduled_thread
from common.database import dynamo
from common.runtime.context import AppContext
from common.web.cors import web_origin

log = logging.getLogger(__name__)

CHECK_SECONDS = 0.5
RELOAD_SECONDS = 60.0
FRESH_SECONDS = 1.0  # an app's record is taken from the copy only if a check confirmed it this recently
# The origins the sign-in page may show apps' logos from go into its Content-Security-Policy header: at most
# this many, the oldest apps' first, so that apps registering by the hundred can not make the header too
# large for a proxy (their logos are then not shown; the app's name always is).
MAX_LOGO_ORIGINS = 50


@dataclass(frozen=True)
class Snapshot:
    """The registry as read at one version: its apps (those whose records can be read) and the origins
    whose pages may call the token, userinfo and revocation endpoints."""

    version: int
    apps: tuple[AppRecord, ...]
    client_origins: frozenset[str]
    logo_origins: tuple[str, ...] = ()


def client_origins(apps: tuple[AppRecord, ...]) -> frozenset[str]:
    """The origins of every public client's redirect URIs and web origins (a confidential client's
    pages never hold its secret, so never call these endpoints themselves)."""
    origins = set()
    for app in apps:
        oidc = app.oidc()
        if oidc.public:
            origins |= {origin for uri in (*oidc.redirect_uris, *oidc.web_origins) if (origin := web_origin(uri))}
    return frozenset(origins)


def logo_origins(apps: tuple[AppRecord, ...]) -> tuple[str, ...]:
    """The origins of the apps' logos (logo_uri), each once, the oldest apps' first, MAX_LOGO_ORIGINS at most."""
    origins = dict.fromkeys(origin for app in apps if app.logo_uri and (origin := web_origin(app.logo_uri)))
    return tuple(origins)[:MAX_LOGO_ORIGINS]


Listener = Callable[[Snapshot], None]


class AppRegistry:
    def __init__(self, store: AppStore, *, every: float = CHECK_SECONDS) -> None:
        self.store, self.every = store, every
        self._snapshot: Snapshot | None = None
        self._loaded_at = 0.0
        self._confirmed_at = 0.0  # when the last check that found the copy current began (monotonic)
        self._by_id: dict[str, AppRecord] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._checking = threading.Lock()  # one request checks for the others while the watching is behind
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = BurstLog(log)

    def current(self) -> Snapshot:
        """The registry as last read (read now at the first call, which starts the watching)."""
        snapshot = self._snapshot
        if snapshot is None:
            with self._lock:
                if self._snapshot is None:
                    began = time.monotonic()
                    self._publish(self._read(), began=began)
                self._start()
            snapshot = self._snapshot
        assert snapshot is not None
        return snapshot

    def fresh(self) -> Snapshot:
        """The registry with every change committed FRESH_SECONDS ago: the copy if a check confirmed it
        that recently, else checked now (the watching thread is behind: a slow DynamoDB, a busy host)."""
        self.current()
        if time.monotonic() - self._confirmed_at > FRESH_SECONDS:
            with self._checking:
                if time.monotonic() - self._confirmed_at > FRESH_SECONDS:
                    self.check()
        return self.current()

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every later snapshot (from the watching thread, or from a request's check
        while the watching is behind)."""
        with self._lock:
            self._listeners.append(listener)

    def stop(self) -> None:
        self._stop.set()

    def fresh_app(self, client_id: str) -> AppRecord | None:
        """The app as the copy holds it, if a check confirmed the copy within FRESH_SECONDS (so a change
        committed that long ago is in it); None if the copy is older, or holds no such app (one added a
        moment ago is not in it yet): the caller reads the record itself then."""
        self.current()
        if time.monotonic() - self._confirmed_at > FRESH_SECONDS:
            return None
        return self._by_id.get(client_id)

    def holds(self, client_id: str) -> bool:
        """Whether the copy as last read holds the app (no read: a removal shows within CHECK_SECONDS)."""
        self.current()
        return client_id in self._by_id

    def check(self) -> bool:
        """Read the version, and the list if it moved (or is due anyway); whether the snapshot changed."""
        known, began = self._snapshot, time.monotonic()
        if known is not None and began - self._loaded_at < RELOAD_SECONDS and self.store.version() == known.version:
            self._confirmed_at = began  # every change committed before the read began is in the copy
            return False
        fresh = self._read()
        self._publish(fresh, began=began)
        return known is None or fresh != known

    def _read(self) -> Snapshot:
        version = self.store.version()  # before the list: a change between them is read again at the next check
        apps = tuple(sorted(self.store.list(), key=lambda app: (app.created_at, app.client_id)))
        return Snapshot(version=version, apps=apps, client_origins=client_origins(apps),
                        logo_origins=logo_origins(apps))

    def _publish(self, snapshot: Snapshot, *, began: float) -> None:
        previous, self._snapshot, self._loaded_at = self._snapshot, snapshot, began
        self._by_id, self._confirmed_at = {app.client_id: app for app in snapshot.apps}, began
        if previous is None or snapshot == previous:
            return
        for listener in list(self._listeners):
            listener(snapshot)

    def _start(self) -> None:
        if self._thread is None:
            # The thread holds the registry weakly: the registry of an app that is let go (a test's) takes
            # its thread with it, rather than watching on for good, whatever its tables became.
            weakref.finalize(self, self._stop.set)
            self._thread = threading.Thread(target=_watch_until, args=(weakref.ref(self), self._stop, self.every),
                                            name="app-registry", daemon=True)
            self._thread.start()

    def watch_once(self) -> None:
        """One check, as the watching thread makes it: a failure is logged (once per burst), not raised."""
        try:
            self.check()
        except (ClientError, BotoCoreError) as exc:
            level = logging.WARNING if dynamo.is_unavailable(exc) else logging.ERROR
            self._log.log(level, "app registry: not read (%s); the apps as last read stay", type(exc).__name__)
        except Exception:  # a listener's bug must not end the watching of every other
            self._log.log(logging.ERROR, "app registry: check failed", exc_info=True)


def _watch_until(registry_ref: weakref.ref[AppRegistry], stop: threading.Event, every: float) -> None:
    scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
    while not stop.wait(every):
        registry = registry_ref()
        if registry is None:
            return
        registry.watch_once()
        del registry


APP_REGISTRY: Slot[AppRegistry] = Slot("relying_parties.registry")


def app_registry(ctx: AppContext) -> AppRegistry:
    """The process's one registry copy for this app context (not yet read: it starts at its first use)."""
    return ctx.slots.get_or_make(APP_REGISTRY, lambda: AppRegistry(AppStore(ctx.dynamodb, ctx.tables.apps)))


def allowed_client_origins(ctx: AppContext) -> frozenset[str]:
    """The origins whose pages may call the token, userinfo and revocation endpoints, as every host must
    see them within FRESH_SECONDS of a change (an origin taken away included); none while the registry
    cannot be read (a browser's call then fails as it would without CORS)."""
    try:
        return app_registry(ctx).fresh().client_origins
    except (ClientError, BotoCoreError) as exc:
        if not dynamo.is_unavailable(exc):
            raise
        return frozenset()


def allowed_logo_origins(ctx: AppContext) -> tuple[str, ...]:
    """The origins the sign-in page may show apps' logos from (its img-src), as every host sees them within
    FRESH_SECONDS of a change; none while the registry cannot be read (the page shows the apps' names alone)."""
    try:
        return app_registry(ctx).fresh().logo_origins
    except (ClientError, BotoCoreError) as exc:
        log.warning("app registry: not read for the logos' origins (%s); the page shows none", type(exc).__name__)
        return ()


def current_app(ctx: AppContext, *, client_id: str) -> AppRecord | None:
    """The app `client_id` as every host must see it within FRESH_SECONDS of a change (an app removed, a
    redirect URI taken away, a secret rotated): from this process's copy when a check confirmed it that
    recently, else (a copy behind, an app added a moment ago, an unknown id) read from its record."""
    try:
        found = app_registry(ctx).fresh_app(client_id)
    except (ClientError, BotoCoreError) as exc:
        if not dynamo.is_unavailable(exc):
            raise
        found = None  # the record's own read answers (or fails as any read does)
    return found if found is not None else app_registry(ctx).store.get(client_id)

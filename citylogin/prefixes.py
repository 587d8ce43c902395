"""Where a URL is served: every URL prefix, the module whose blueprint serves it (in the package that is the
prefix's home) and the services that mount it. It is the one table: docs/reference/code-layout.md shows it,
and tests/test_url_prefixes.py holds both to the routes the apps register. Each service says its own
prefixes (its `PREFIXES`); the rows below them are the routes every service has, and the web UI's."""
from __future__ import annotations

from dataclasses import dataclass

from device_manager import app_device_manager
from login_app import app_login
from registration import app_registration
from session_manager import app_session_manager

# The four services, by the name a proxy routes to (deploy/nginx/citylogin-services.conf.template).
SERVICES = {"registration": app_registration, "login": app_login, "session": app_session_manager,
            "device": app_device_manager}
EVERY_SERVICE = "every service"
WEB_UI = "the web UI"  # the all-in-one app, or citylogin.webui.app alone


@dataclass(frozen=True)
class Mount:
    path: str  # a prefix (its first path segment, "/account"), or one path exactly ("= /device")
    home: str  # the module whose blueprint serves it
    served_by: str  # a service's name, EVERY_SERVICE or WEB_UI

    @property
    def exact(self) -> bool:
        return self.path.startswith("= ")


OPERATIONS = [Mount("/.well-known", "oidc.discovery.well_known", EVERY_SERVICE),
              Mount("/healthz", "common.web.app_factory", EVERY_SERVICE),
              Mount("/readyz", "common.web.app_factory", EVERY_SERVICE),
              Mount("/openapi.json", "common.web.app_factory", EVERY_SERVICE),
              Mount("/metrics", "common.web.metrics", EVERY_SERVICE)]
WEB_PAGES = [Mount("= /", "citylogin.webui.views", WEB_UI),
             Mount("= /device", "citylogin.webui.views", WEB_UI),  # the page a TV's code is approved on
             Mount("= /admin/", "citylogin.webui.views", WEB_UI),  # the operators' console
             Mount("/web", "citylogin.webui.views", WEB_UI),
             Mount("/sdk", "citylogin.webui.views", WEB_UI)]


def table() -> list[Mount]:
    """Every prefix → the module of its blueprint → who serves it."""
    api = [Mount(prefix, blueprint.import_name, service)
           for service, module in SERVICES.items() for prefix, blueprint in module.PREFIXES.items()]
    return [*api, *OPERATIONS, *WEB_PAGES]


def mount_of(rule: str, mounts: list[Mount]) -> Mount | None:
    """The row that serves the route `rule` (a Flask rule string): its exact row, else its prefix's."""
    for mount in mounts:
        if mount.exact and mount.path[2:] == rule:
            return mount
    first = "/" + rule.lstrip("/").split("/", 1)[0]
    return next((mount for mount in mounts if not mount.exact and mount.path == first), None)

"""One home per URL prefix: each prefix is served by one blueprint, in the package that owns it
(citylogin.prefixes, the one table), and run as separate services each prefix is on exactly one of them,
so a proxy can route them by prefix; the all-in-one app serves the same routes as the four together; and
the table of docs/reference/code-layout.md is the code's."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

from flask import Blueprint, Flask

from citylogin.app import create_app as create_all_in_one
from citylogin.prefixes import EVERY_SERVICE, SERVICES, WEB_UI, Mount, mount_of, table
from citylogin.webui.app import create_app as create_web_ui
from device_manager import app_device_manager
from login_app import app_login
from registration import app_registration
from session_manager import app_session_manager

LAYOUT_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "code-layout.md"


def _routes(app: Flask) -> dict[tuple[str, str], str]:
    """(rule, method) -> the module of the function that serves it."""
    return {(rule.rule, method): app.view_functions[rule.endpoint].__module__
            for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}
            if rule.endpoint != "static"}


def away_from_home(app: Flask, mounts: list[Mount]) -> list[str]:
    """Each route served from a module other than its prefix's home, or under no prefix of the table."""
    wrong = []
    for (rule, method), module in sorted(_routes(app).items()):
        mount = mount_of(rule, mounts)
        if mount is None or mount.home != module:
            wrong.append(f"{method} {rule}: {module}, not {mount.home if mount else 'a prefix of the table'}")
    return wrong


def test_every_route_is_served_from_its_prefixs_home(base_config):
    mounts = table()
    for module in SERVICES.values():
        assert away_from_home(module.create_app(base_config), mounts) == [], module.__name__
    assert away_from_home(create_all_in_one(base_config), mounts) == []
    assert away_from_home(create_web_ui(base_config), mounts) == []


def test_each_prefix_is_on_one_service(base_config):
    mounts = table()
    served: dict[tuple[str, str], str] = {}
    for name, module in SERVICES.items():
        routes = _routes(module.create_app(base_config))
        rows = {mount_of(rule, mounts) for rule, _ in routes}
        assert {row.path for row in rows if row} == {m.path for m in mounts if m.served_by in (name, EVERY_SERVICE)}
        api = {route for route in routes if mount_of(route[0], mounts).served_by == name}
        assert not api & set(served), f"{name} serves routes another service serves"
        served.update({route: name for route in api})
    everything = _routes(create_all_in_one(base_config))
    api = {route for route in everything if mount_of(route[0], mounts).served_by not in (EVERY_SERVICE, WEB_UI)}
    assert api == set(served), "the all-in-one app and the four services serve different routes"


def test_each_service_says_its_prefixes_in_its_first_lines():
    modules = [app_registration, app_login, app_session_manager, app_device_manager]
    assert list(SERVICES.values()) == modules
    for module in modules:
        said = set(re.findall(r"(?<![\w.])/[a-z][\w-]*", (module.__doc__ or "").split("; and")[0]))
        assert said == set(module.PREFIXES), module.__name__


def test_a_route_outside_its_prefixs_home_is_caught():
    # sessions' blueprint growing an /account route: the table says /account is accounts'.
    stray = types.ModuleType("sessions.stray_views")
    sys.modules[stray.__name__] = stray
    try:
        exec("from flask import Blueprint\nbp = Blueprint('stray', __name__)\n"
             "@bp.get('/account/elsewhere')\ndef elsewhere():\n    return ''\n", stray.__dict__)
        app = Flask("stray")
        app.register_blueprint(stray.bp)
        assert away_from_home(app, table()) == [
            "GET /account/elsewhere: sessions.stray_views, not accounts.views"]
        assert isinstance(stray.bp, Blueprint)
    finally:
        del sys.modules[stray.__name__]


def page_table(page: Path = LAYOUT_PAGE) -> list[tuple[str, str, str]]:
    """The rows of the page's table under "Where a URL is served": | `path` | `module` | served by |."""
    text = page.read_text()
    section = text.split("## Where a URL is served", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        match = re.fullmatch(r"\| `([^`]+)` \| `([\w.]+)` \| ([^|]+) \|", line.strip())
        if match:
            rows.append((match[1], match[2], match[3].strip()))
    return rows


def test_the_layout_page_shows_the_table():
    assert page_table() == [(m.path, m.home, m.served_by) for m in table()]

"""One home per URL prefix (STYLE "The house"): each prefix is served whole by one blueprint, and run
as separate services each prefix is on exactly one of them, so a proxy can route them by prefix; the
all-in-one app serves the same routes as the four together."""
from __future__ import annotations

import importlib

from citylogin.app import create_app as create_all_in_one

SERVICES = {"registration.app_registration": {"registration"}, "login_app.app_login": {"login", "account", "admin"},
            "session_manager.app_session_manager": {"session", "ssf", "oidc"},
            "device_manager.app_device_manager": {"device"}}
EVERY_SERVICE = {"healthz", "readyz", "openapi.json", ".well-known", "metrics"}  # the operational routes


def _prefix(rule: str) -> str:
    return rule.strip("/").split("/")[0]


def _routes(app) -> dict[tuple[str, str], str]:
    """(rule, method) -> the blueprint serving it, for the API's routes."""
    return {(rule.rule, method): rule.endpoint.rpartition(".")[0]
            for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}
            if _prefix(rule.rule) not in EVERY_SERVICE and rule.endpoint != "static"}


def test_each_prefix_is_one_blueprint_of_one_service(base_config):
    served: dict[tuple[str, str], str] = {}
    for module, prefixes in SERVICES.items():
        routes = _routes(importlib.import_module(module).create_app(base_config))
        assert {_prefix(rule) for rule, _ in routes} == prefixes, module
        assert not set(routes) & set(served), f"{module} serves routes another service serves"
        served.update({route: module for route in routes})
    everything = _routes(create_all_in_one(base_config))
    api = {route: blueprint for route, blueprint in everything.items() if blueprint != "web_ui"}
    assert set(api) == set(served), "the all-in-one app and the four services serve different routes"
    for prefix in {_prefix(rule) for rule, _ in api}:
        blueprints = {blueprint for (rule, _), blueprint in api.items() if _prefix(rule) == prefix}
        assert len(blueprints) == 1, f"/{prefix} is served by {sorted(blueprints)}"

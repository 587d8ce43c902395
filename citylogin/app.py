"""The all-in-one app: every service's blueprints on one port (citylogin.prefixes), plus the web UI."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from citylogin.prefixes import SERVICES
from citylogin.webui.views import bp as web_ui_bp
from common.slots import Given
from common.web.app_factory import create_service_app
from oidc.discovery.well_known import bp as well_known_bp


def blueprints() -> list[Blueprint]:
    """Each service's blueprints (one per URL prefix) in the services' order, /.well-known, and the web UI."""
    api = [blueprint for module in SERVICES.values() for blueprint in module.PREFIXES.values()]
    return [*api, well_known_bp, web_ui_bp]


def given() -> list[Given[Any]]:
    """What each service gives its blueprints (the flows they ask of the packages above their homes)."""
    return [each for module in SERVICES.values() for each in module.GIVEN]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin", blueprints=blueprints(), given=given(), test_config=test_config)

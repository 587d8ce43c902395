"""The device manager alone: `python -m device_manager.app_device_manager` (port 5004).
It serves /device; and, as every service does, /.well-known (oidc.discovery.well_known), /healthz, /readyz,
/openapi.json and /metrics (common.web)."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from devices.views import bp as device_bp
from common.slots import Given
from devices import views as device_views
from flows import for_devices
from common.web.app_factory import create_service_app, run_standalone
from oidc.discovery.well_known import bp as well_known_bp

# The URL prefixes this service serves, each by the blueprint of the package that is its home.
PREFIXES: dict[str, Blueprint] = {
    "/device": device_bp,
}
# What those blueprints ask of the packages above their homes.
GIVEN: list[Given[Any]] = [device_views.FLOWS.given(for_devices)]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-device-manager",
                              blueprints=[*PREFIXES.values(), well_known_bp], given=GIVEN,
                              test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5004)

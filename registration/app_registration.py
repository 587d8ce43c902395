"""The registration service alone: `python -m registration.app_registration` (port 5001).
It serves /registration; and, as every service does, /.well-known (oidc.discovery.well_known), /healthz, /readyz,
/openapi.json and /metrics (common.web)."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from registration.views import bp as registration_bp
from common.slots import Given
from common.web.app_factory import create_service_app, run_standalone
from oidc.discovery.well_known import bp as well_known_bp

# The URL prefixes this service serves, each by the blueprint of the package that is its home.
PREFIXES: dict[str, Blueprint] = {
    "/registration": registration_bp,
}
# What those blueprints ask of the packages above their homes.
GIVEN: list[Given[Any]] = []


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-registration",
                              blueprints=[*PREFIXES.values(), well_known_bp], given=GIVEN,
                              test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5001)

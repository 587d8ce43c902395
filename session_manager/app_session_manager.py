"""The session manager alone: `python -m session_manager.app_session_manager` (port 5003).
It serves /session, /ssf and /oidc; and, as every service does, /.well-known (oidc.discovery.well_known), /healthz,
/readyz, /openapi.json and /metrics (common.web)."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from common.slots import Given
from flows import for_oidc, for_sessions
from oidc import views as oidc_views
from sessions import views as session_views
from sessions.views import bp as session_bp
from relying_parties.views import bp as ssf_bp
from oidc.views import bp as oidc_bp
from common.web.app_factory import create_service_app, run_standalone
from oidc.discovery.well_known import bp as well_known_bp

# The URL prefixes this service serves, each by the blueprint of the package that is its home.
PREFIXES: dict[str, Blueprint] = {
    "/session": session_bp,
    "/ssf": ssf_bp,
    "/oidc": oidc_bp,
}
# What those blueprints ask of the packages above their homes.
GIVEN: list[Given[Any]] = [session_views.FLOWS.given(for_sessions), oidc_views.FLOWS.given(for_oidc)]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-session-manager",
                              blueprints=[*PREFIXES.values(), well_known_bp], given=GIVEN,
                              test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5003)

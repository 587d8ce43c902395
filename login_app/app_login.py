"""The login service alone: `python -m login_app.app_login` (port 5002).
It serves /login, /account, /admin and /federation (upstream identity providers, SPEC §16); and, as every
service does, /.well-known (oidc.discovery.well_known), /healthz, /readyz, /openapi.json and /metrics (common.web)."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from login_app.views import bp as login_bp
from accounts.views import bp as account_bp
from operators.views import bp as admin_bp
from accounts import views as account_views
from federation import views as federation_views
from common.slots import Given
from flows import for_accounts, for_federation
from common.web.app_factory import create_service_app, run_standalone
from oidc.discovery.well_known import bp as well_known_bp

# The URL prefixes this service serves, each by the blueprint of the package that is its home.
PREFIXES: dict[str, Blueprint] = {
    "/login": login_bp,
    "/account": account_bp,
    "/admin": admin_bp,
    "/federation": federation_views.bp,
}
# What those blueprints ask of the packages above their homes.
GIVEN: list[Given[Any]] = [account_views.FLOWS.given(for_accounts), federation_views.FLOWS.given(for_federation)]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-login",
                              blueprints=[*PREFIXES.values(), well_known_bp], given=GIVEN,
                              test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5002)

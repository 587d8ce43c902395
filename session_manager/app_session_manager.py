"""The session manager alone: `python -m session_manager.app_session_manager` (port 5003): /session, /ssf and /oidc."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from session_manager.oidc_views import bp as oidc_bp
from session_manager.ssf_views import bp as ssf_bp
from session_manager.views import bp
from web.app_factory import create_service_app, run_standalone


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-session-manager", blueprints=[bp, ssf_bp, oidc_bp],
                              test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5003)

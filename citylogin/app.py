"""The all-in-one app: every service's blueprint on one port, plus the web UI."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from citylogin.web_ui import bp as web_ui_bp
from device_manager.views import bp as device_bp
from login_app.account_views import bp as account_bp
from login_app.admin_views import bp as admin_bp
from login_app.views import bp as login_bp
from registration.views import bp as registration_bp
from session_manager.oidc_views import bp as oidc_bp
from session_manager.ssf_views import bp as ssf_bp
from session_manager.views import bp as session_bp
from web.app_factory import create_service_app


def blueprints() -> list[Blueprint]:
    """One blueprint per URL prefix: /registration, /login, /account, /session, /ssf, /oidc, /device; and /
    (the web UI)."""
    return [registration_bp, login_bp, account_bp, admin_bp, session_bp, ssf_bp, oidc_bp, device_bp, web_ui_bp]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin", blueprints=blueprints(), test_config=test_config)

"""The all-in-one app: every service's blueprint on one port, plus the web UI."""
from __future__ import annotations

from accounts.password_views import bp as account_password_bp
from accounts.views import bp as accounts_bp
from citylogin.web_ui import bp as web_ui_bp
from common.app_factory import create_service_app
from device_manager.views import bp as device_bp
from login_app.account_views import bp as account_devices_bp
from login_app.recovery_views import bp as recovery_bp
from login_app.views import bp as login_bp
from registration.views import bp as registration_bp
from session_manager.views import bp as session_bp


def blueprints():
    return [registration_bp, login_bp, session_bp, device_bp, accounts_bp, recovery_bp, account_password_bp,
            account_devices_bp, web_ui_bp]


def create_app(test_config=None):
    return create_service_app(name="citylogin", blueprints=blueprints(), test_config=test_config)

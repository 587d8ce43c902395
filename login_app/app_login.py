"""The login service alone: `python -m login_app.app_login` (port 5002)."""
from __future__ import annotations

from accounts.password_views import bp as account_password_bp
from common.app_factory import create_service_app, run_standalone
from login_app.account_views import bp as account_devices_bp
from login_app.recovery_views import bp as recovery_bp
from login_app.views import bp


def create_app(test_config=None):
    return create_service_app(name="citylogin-login",
                              blueprints=[bp, recovery_bp, account_password_bp, account_devices_bp],
                              test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5002)

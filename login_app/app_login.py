"""The login service alone: `python -m login_app.app_login` (port 5002): /login, /account and /admin."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from login_app.account_views import bp as account_bp
from login_app.admin_views import bp as admin_bp
from login_app.views import bp
from web.app_factory import create_service_app, run_standalone


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-login", blueprints=[bp, account_bp, admin_bp], test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5002)

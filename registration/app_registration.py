"""The registration service alone: `python -m registration.app_registration` (port 5001): /registration."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from registration.views import bp
from web.app_factory import create_service_app, run_standalone


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-registration", blueprints=[bp], test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5001)

"""The device manager alone: `python -m device_manager.app_device_manager` (port 5004): /device."""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from device_manager.views import bp
from web.app_factory import create_service_app, run_standalone


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    return create_service_app(name="citylogin-device-manager", blueprints=[bp], test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5004)

"""The device manager alone: `python -m device_manager.app_device_manager` (port 5004): /device."""
from __future__ import annotations

from device_manager.views import bp
from web.app_factory import create_service_app, run_standalone


def create_app(test_config=None):
    return create_service_app(name="citylogin-device-manager", blueprints=[bp], test_config=test_config)


if __name__ == "__main__":
    run_standalone(create_app, default_port=5004)

"""The device service over HTTP: /device (python -m device_manager.app_device_manager, port 5004)."""

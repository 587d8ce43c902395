"""device_manager package."""

"""login_app package."""

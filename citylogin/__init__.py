"""citylogin package."""

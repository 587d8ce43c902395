"""session_manager package."""

"""The session service over HTTP: /session (python -m session_manager.app_session_manager, port 5003)."""

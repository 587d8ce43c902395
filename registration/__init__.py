"""The registration service over HTTP: /registration (python -m registration.app_registration, port 5001)."""

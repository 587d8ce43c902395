"""Serving: `citylogin serve` (every service on one port, or each alone), the gunicorn worker and its
settings, and the record of the services running on this machine."""

"""What the /session blueprint asks of the packages above sessions/ (sessions.views.SessionFlows), by name:
the service that mounts the blueprint gives this module."""
from __future__ import annotations

from flows.app_introspection import introspection_for
from flows.session_resume import resume_session
from oidc.logout.session_apps import sign_app_out, signed_in_apps

__all__ = ["introspection_for", "resume_session", "sign_app_out", "signed_in_apps"]

"""What the /oidc blueprint asks of the packages above oidc/ (oidc.views.OidcFlows), by name: the service
that mounts the blueprint gives this module."""
from __future__ import annotations

from flows.app_sign_in import finish_with_device as sign_in_with_device
from flows.app_sign_out import finish_with_device as sign_out_with_device
from flows.device_approval import approve as approve_screen
from flows.device_approval import approve_with_device as approve_screen_with_device

__all__ = ["approve_screen", "approve_screen_with_device", "sign_in_with_device", "sign_out_with_device"]

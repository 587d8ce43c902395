"""What the /federation blueprint asks of the packages above federation/ (federation.views.FederationFlows),
by name: the service that mounts the blueprint gives this module."""
from __future__ import annotations

from flows.identity_link import link_signed_in

__all__ = ["link_signed_in"]

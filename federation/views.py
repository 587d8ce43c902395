"""HTTP routes of /federation (SPEC §16): parse, call one service function, shape the answer."""
from __future__ import annotations

from typing import Protocol

from flask import Blueprint

from common.runtime.context import AppContext
from common.slots import Slot
from federation.models import LinkedIdentity, UpstreamIdentity

bp = Blueprint("federation", __name__, url_prefix="/federation")


class FederationFlows(Protocol):
    """What /federation asks of the packages above federation/ (flows/for_federation.py): the work a
    ticket lets the browser do, which spans accounts, devices and sessions."""

    def link_signed_in(self, ctx: AppContext, *, user_uuid: str, session_id: str,
                       identity: UpstreamIdentity) -> LinkedIdentity:
        """flows.identity_link: the provider's answer to "link another", linked to the signed-in account."""


FLOWS: Slot[FederationFlows] = Slot("federation.views.flows")


# --- the provider's round trip: the providers offered, start, callback, the ticket's view ----------------



# --- what a ticket lets the browser do: sign in, sign up, link; the account's identities ----------------

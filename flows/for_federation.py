"""What the /federation blueprint asks of the packages above federation/ (federation.views.FederationFlows),
by name: the service that mounts the blueprint gives this module."""
from __future__ import annotations

from flows.federated_enrol import enrol
from flows.federated_link import link_and_sign_in
from flows.federated_link_mail import confirm_link, mail_link
from flows.federated_login import sign_in
from flows.federated_pairing import pair
from flows.federated_recovery import recover
from flows.federated_signup import sign_up
from flows.identity_link import link_signed_in
from flows.identity_unlink import list_identities, unlink

__all__ = ["confirm_link", "enrol", "link_and_sign_in", "link_signed_in", "list_identities", "mail_link", "pair",
           "recover", "sign_in", "sign_up", "unlink"]

"""What the /account blueprint asks of the packages above accounts/ (accounts.views.AccountFlows, and the
readable copies of accounts.downloads), by name: the service that mounts the blueprint gives this module."""
from __future__ import annotations

from flows.data_export import export as export_data
from flows.deletion import delete_account
from flows.deletion_sweeper import start_sweeper as start_deletion_sweeper
from flows.not_me import remove_device as not_me
from flows.readable_export import readable as readable_copy
from flows.readable_html import POLICY as READABLE_PAGE_POLICY
from flows.readable_html import readable_page
from flows.recovery import regenerate_recovery_codes
from oidc.app_grants.consents import list_consents
from oidc.app_grants.consents import withdraw as withdraw_consent

__all__ = ["READABLE_PAGE_POLICY", "delete_account", "export_data", "list_consents", "not_me", "readable_copy",
           "readable_page", "regenerate_recovery_codes", "start_deletion_sweeper", "withdraw_consent"]

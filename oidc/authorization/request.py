"""An app's authorization request as kept while the person signs in (REQUEST_TTL), and made again
from its parameters for Authlib (its record, StoredRequest, is oidc.core.kept_request's)."""
from __future__ import annotations

from oidc.core.context import issuer
from oidc.core.kept_request import StoredRequest
from common.runtime.context import AppContext

REQUEST_PURPOSE = "oidc_request"


class Pending:
    """Stands in for the person while the request is checked: who it is is known only once the
    browser signs in (prompt=none is answered then, without a page)."""

    def get_user_id(self) -> None:
        return None


def authorization_request(ctx: AppContext, params: dict[str, str]) -> StoredRequest:
    # Authlib reads the parameters from `args`; of the URI it only checks the transport (https, or a
    # loopback host), so the endpoint's own URI serves without the query encoded again (issue 66: twice
    # a sign-in, at /oidc/authorize and when the device completes it).
    return StoredRequest(f"{issuer(ctx)}/oidc/authorize", params)

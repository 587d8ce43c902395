"""What each kind of upstream provider needs beyond OpenID Connect Discovery (SPEC §16): its defaults and its
quirks. A preset fills the defaults of a provider's record; what the operator gives explicitly overrides them.

Microsoft's multi-tenant endpoints (`common`, `organizations`, `consumers`) publish one discovery document for
every tenant, whose `issuer` is a template holding `{tenantid}`: each ID token's `iss` is that template with
the token's own `tid` in it (`issuer_matches`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from federation.models import Preset as PresetName

TokenAuthMethod = Literal["client_secret_basic", "client_secret_post"]
ResponseMode = Literal["query", "form_post"]

TENANT_PLACEHOLDER = "{tenantid}"
# Microsoft's tenant ids are GUIDs (the `tid` claim); nothing else may go into the issuer's template.
_TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class ProviderPreset:
    """One kind of provider. `issuer` None: the operator names it (any issuer, by discovery)."""

    name: PresetName
    display_name: str
    issuer: str | None
    scope: str = "openid email profile"
    token_auth_method: TokenAuthMethod = "client_secret_basic"
    response_mode: ResponseMode = "query"
    # Apple: the client secret is a JWT citylogin signs (ES256) with the operator's key, not a shared secret
    jwt_client_secret: bool = False
    # Apple: `email_verified` may come as the string "true" (and `is_private_email` likewise)
    email_verified_may_be_string: bool = False
    # Apple: the person's name is in no claim, only in the `user` field of the first form_post answer
    name_in_first_form_post: bool = False
    # Microsoft multi-tenant: the discovery document's issuer holds {tenantid}
    tenant_issuer: bool = False
    # A re-authentication asks for a fresh sign-in with max_age=0 (OIDC Core §3.1.2.1), and with this `prompt`
    # where the provider takes it (Google refuses prompt=login: max_age alone)
    reauth_prompt: str | None = "login"


PRESETS: dict[PresetName, ProviderPreset] = {
    "google": ProviderPreset(name="google", display_name="Google", issuer="https://accounts.google.com",
                             reauth_prompt=None),
    "apple": ProviderPreset(name="apple", display_name="Apple", issuer="https://appleid.apple.com",
                            scope="openid email name", token_auth_method="client_secret_post",
                            response_mode="form_post", jwt_client_secret=True, email_verified_may_be_string=True,
                            name_in_first_form_post=True),
    "microsoft": ProviderPreset(name="microsoft", display_name="Microsoft",
                                issuer="https://login.microsoftonline.com/common/v2.0", tenant_issuer=True),
    "generic": ProviderPreset(name="generic", display_name="", issuer=None),
}


def claim_is_true(value: object) -> bool:
    """A boolean claim as providers send it: true, or (Apple) the string "true"; anything else is false."""
    return value is True or value == "true"


def issuer_matches(*, configured: str, metadata_issuer: str, token_iss: str, tid: object) -> bool:
    """Whether an ID token's `iss` is the provider's (OIDC Core §3.1.3.7 step 2, OIDC Discovery §4.3).

    Where the discovery document's issuer is the operator's issuer, the token's `iss` must equal it exactly.
    Where it is a `{tenantid}` template (Microsoft multi-tenant), the template must be of the configured
    issuer's own origin (scheme, host and port as parsed), and the token's `iss` must be exactly the template
    with the token's `tid` in it, a GUID and nothing else."""
    if TENANT_PLACEHOLDER not in metadata_issuer:
        return metadata_issuer == configured and token_iss == metadata_issuer
    if not isinstance(tid, str) or not _TENANT_ID.fullmatch(tid):
        return False
    expected = metadata_issuer.replace(TENANT_PLACEHOLDER, tid)
    template, wanted = _parts(configured), _parts(expected)
    if template is None or wanted is None or not _same_origin(template, wanted) or wanted.query or wanted.fragment:
        return False
    return token_iss == expected  # OIDC Core §3.1.3.7 step 2: exactly, once the tenant is in


def _parts(url: str) -> SplitResult | None:
    """The URL's parts, None for anything else (another scheme, credentials in it, a bad port). http is the
    configured issuer's own choice, which only a deployment fetching from private addresses may make."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.username, parts.password) != (None, None):
        return None
    return parts


def _same_origin(a: SplitResult, b: SplitResult) -> bool:
    return (a.scheme, a.hostname, a.port, a.netloc) == (b.scheme, b.hostname, b.port, b.netloc)

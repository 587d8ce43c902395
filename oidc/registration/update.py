"""An app's own update of its registration (RFC 7592 §2.2) against what an operator set on it (SPEC §14).

What an operator set on an app that registered itself (relying_parties.models.OPERATOR_FIELDS, recorded in the
app's operator_fields) is the operator's: the app's PUT keeps it where it does not name its member, and a PUT
that names a weaker value (a requirement turned off, a grant the operator withdrew) is refused naming the
member, nothing written. The fields no RFC 7591 member names (its profile, its PKCE rule, its browser origins,
its screens' class) are never the app's to change: every PUT keeps them, whoever set them. Each rule is a step."""
from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from relying_parties.models import UNSIGNED_ALG, AppRecord, OidcClient
from oidc.registration.client_metadata import AUTHORIZATION_CODE, REFRESH_TOKEN, InvalidClientMetadata
from oidc.core.models import DEVICE_CODE_GRANT_TYPE

# OidcClient fields a registration has no member for: set by an operator alone, kept by every PUT
WITHOUT_MEMBER = ("profile", "require_pkce", "web_origins", "device_class")
# Requirements an operator may set, by the member an app's PUT names them with: kept, never turned off by the app
REQUIREMENTS = {"require_par": "require_pushed_authorization_requests", "require_dpop": "dpop_bound_access_tokens",
                "require_signed_request_object": "require_signed_request_object"}
GRANT_TYPES_MEMBER = "grant_types"
ALG_MEMBER = "request_object_signing_alg"


def kept_by_operator(app: AppRecord, asked: OidcClient, *, named: Collection[str]) -> OidcClient:
    """The client the PUT asks for (`asked`, parsed from a body naming the members `named`) with what is the
    operator's kept; InvalidClientMetadata naming the member that asks to weaken an operator's field."""
    current, operators = app.oidc(), set(app.operator_fields or ())
    kept: dict[str, Any] = {name: getattr(current, name) for name in WITHOUT_MEMBER}
    for name, member in REQUIREMENTS.items():
        if name in operators:
            kept[name] = requirement_kept(current=getattr(current, name), asked=getattr(asked, name),
                                          member=member, named=named)
    if "consent" in operators:
        kept["consent"] = current.consent  # no member: the app can neither ask for it nor drop it
    if "allow_unsigned_request_objects" in operators:
        kept.update(unsigned_objects_kept(current, asked, named=named))
    if GRANT_TYPES_MEMBER in operators:
        kept.update(grants_kept(current, asked, named=named))
    return dataclasses.replace(asked, **kept)


def requirement_kept(*, current: bool, asked: bool, member: str, named: Collection[str]) -> bool:
    """An operator's requirement: kept where the PUT does not name it, refused where it names it off; an app may
    add one the operator did not set."""
    if current and member in named and not asked:
        raise InvalidClientMetadata(member, "set by the operator: an app's update can not turn it off")
    return current or asked


def unsigned_objects_kept(current: OidcClient, asked: OidcClient, *, named: Collection[str]) -> dict[str, Any]:
    """Whether unsigned request objects are taken, as the operator set it: an app the operator holds to signed
    objects can not register alg none."""
    if not current.allow_unsigned_request_objects and current.request_object_signing_alg != UNSIGNED_ALG \
            and ALG_MEMBER in named and asked.request_object_signing_alg == UNSIGNED_ALG:
        raise InvalidClientMetadata(ALG_MEMBER, "the operator allows signed request objects only")
    return {"allow_unsigned_request_objects": current.allow_unsigned_request_objects
            and asked.request_object_signing_alg in (None, UNSIGNED_ALG)}


def grants_kept(current: OidcClient, asked: OidcClient, *, named: Collection[str]) -> dict[str, Any]:
    """The grants the operator left the app: a PUT that does not name grant_types keeps them (the device flow
    included, or withdrawn); one that names a grant the operator withdrew is refused."""
    if GRANT_TYPES_MEMBER not in named:
        return {"grant_types": current.grant_types, "device_flow": current.device_flow}
    withdrawn = [grant for grant in asked.grant_types if grant not in allowed_grants(current)]
    if withdrawn:
        raise InvalidClientMetadata(GRANT_TYPES_MEMBER, f"{withdrawn[0]} was withdrawn by the operator")
    return {}


def allowed_grants(client: OidcClient) -> set[str]:
    """The grants an app may use as it stands (no grant_types recorded: the code and refresh grants); the device
    flow by its own switch, which an operator turns."""
    grants = set(client.grant_types or (AUTHORIZATION_CODE, REFRESH_TOKEN)) - {DEVICE_CODE_GRANT_TYPE}
    return grants | {DEVICE_CODE_GRANT_TYPE} if client.device_flow else grants

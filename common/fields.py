"""Request fields that a client may leave out but, when it sends one, never as null: the OpenAPI
document says so (the field's schema has no null and no default) and the server refuses a null with
400 invalid_field (kind invalid_value), so that the two agree. For fields whose absence the server
reads as "not given" (and a null would only be refused later, as missing)."""
from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator, Field

from common.errors import FieldKind, field_refusal

T = TypeVar("T")


def _refuse_null(value: object) -> object:
    if value is None:
        raise field_refusal(FieldKind.INVALID_VALUE, "invalid_value", "may be left out, but not null")
    return value


def _without_null(schema: dict[str, Any]) -> None:
    """The field's JSON schema without its `null` option and its null default."""
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    if "default" in schema and schema["default"] is None:
        del schema["default"]


Omittable = Annotated[T | None, BeforeValidator(_refuse_null), Field(json_schema_extra=_without_null)]


# The sessions a person chose to sign out to make room for a login (SPEC §5 `displace`): session ids as the
# 409 concurrent_login listed them; naming them is itself the confirmation.
SessionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
Displace = Annotated[list[SessionId], Field(
    default_factory=list, max_length=64,
    description="session_ids from the 409 concurrent_login's active_devices to sign out instead of the default "
                "ones (a confirmation in itself); at least its `needed`")]

"""Request bodies: JSON object in, a validated pydantic model out, or a problem+json 4xx."""
from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from common.errors import FieldKind, InvalidField, InvalidJson, MissingFields

M = TypeVar("M", bound=BaseModel)
FIELD_KEYS = "error.invalid_field."
PASSWORD_LENGTH_RULE = "8-128 characters"  # accounts.models.check_password_strength
# The rules of our own validators (ValueError texts of accounts/models.py, common/text.py and
# email-validator), told apart by a fragment of their English: (fragment, kind, catalogue key).
_VALUE_RULES = (
    ("too common", FieldKind.TOO_COMMON, "too_common"),
    ("3-32 characters", FieldKind.INVALID_FORMAT, "username_format"),
    ("valid email address", FieldKind.INVALID_FORMAT, "email_format"),
    ("control or invisible", FieldKind.INVALID_CHARACTERS, "invalid_characters"),
    ("is too long", FieldKind.TOO_LONG, "too_long_any"),
)
_RANGE_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def json_object() -> dict:
    """The request body as a JSON object; 400 invalid_json for anything else."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidJson("A JSON object body is required.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson("The body is not valid JSON.") from None
    except RecursionError:  # nested about 1000 deep: json gives up before any model sees it
        raise InvalidJson("The body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise InvalidJson("The body must be a JSON object.")
    return body


def parse_model(model: type[M], body: dict) -> M:
    """Validate `body`: missing fields -> 400 missing_fields, the first bad one -> 400 invalid_field."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and e["loc"]]
        if missing:
            raise MissingFields(missing) from None
        first = errors[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        kind, key, params = field_rule(exc.errors(include_url=False)[0])
        raise InvalidField(field, f"{field}: {first['msg']}", kind=kind, detail_key=FIELD_KEYS + key,
                           detail_params=params) from None


def field_rule(error: dict[str, Any]) -> tuple[FieldKind, str, dict[str, Any]]:
    """(kind, catalogue key under error.invalid_field., its parameters) of one pydantic error.
    The input is read only for its length, never shown."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "string_too_short":
        if ctx.get("min_length", 1) <= 1:
            return FieldKind.EMPTY, "empty", {}
        return FieldKind.TOO_SHORT, "too_short", {"min": ctx["min_length"]}
    if kind == "string_too_long":
        return FieldKind.TOO_LONG, "too_long", {"max": ctx["max_length"]}
    if kind == "string_pattern_mismatch":
        return FieldKind.INVALID_FORMAT, "invalid_format", {}
    if kind in _RANGE_TYPES:
        return FieldKind.OUT_OF_RANGE, "out_of_range", {}
    if kind == "value_error":
        return _value_rule(error["msg"], error.get("input"))
    return FieldKind.INVALID_VALUE, "invalid_value", {}


def _value_rule(message: str, value: Any) -> tuple[FieldKind, str, dict[str, Any]]:
    if PASSWORD_LENGTH_RULE in message:
        short = isinstance(value, str) and len(value) < 8
        return (FieldKind.TOO_SHORT if short else FieldKind.TOO_LONG), "password_length", {}
    for fragment, kind, key in _VALUE_RULES:
        if fragment in message:
            return kind, key, {}
    return FieldKind.INVALID_VALUE, "invalid_value", {}


def parse_body(model: type[M]) -> M:
    return parse_model(model, json_object())


def parse_optional_body(model: type[M]) -> M:
    """Like parse_body, but an empty body means every field takes its default (a body of only
    whitespace is not empty: it is not JSON, 400 invalid_json)."""
    if not request.get_data(cache=True):
        return model()
    return parse_body(model)

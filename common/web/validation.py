"""Request bodies: JSON object in, a validated pydantic model out, or a problem+json 4xx."""
from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from common.errors import FIELD_RULE, FieldKind, InvalidField, InvalidJson, MissingFields, NotJsonMediaType

M = TypeVar("M", bound=BaseModel)
FIELD_KEYS = "error.invalid_field."
# pydantic's own error types that name a rule of ours; every other one is invalid_value.
_RANGE_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_TYPE_RULES = {
    "string_pattern_mismatch": (FieldKind.INVALID_FORMAT, "invalid_format"),
    "extra_forbidden": (FieldKind.INVALID_VALUE, "unknown_member"),  # a model that refuses unknown members
    **{name: (FieldKind.OUT_OF_RANGE, "out_of_range") for name in _RANGE_TYPES},
}


def json_object() -> dict[str, Any]:
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


def parse_model(model: type[M], body: dict[str, Any]) -> M:
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
        kind, key, params = field_rule(first)
        raise InvalidField(field, f"{field}: {first['msg']}", kind=kind, detail_key=FIELD_KEYS + key,
                           detail_params=params) from None


def field_rule(error: ErrorDetails) -> tuple[FieldKind, str, dict[str, Any]]:
    """(kind, catalogue key under error.invalid_field., its parameters) of one pydantic error, from
    its type and context alone, never its message: our own validators raise
    common.errors.field_refusal, whose type is the kind."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if FIELD_RULE in ctx:
        return FieldKind(kind), ctx[FIELD_RULE], {}
    if kind == "string_too_short":
        if ctx.get("min_length", 1) <= 1:
            return FieldKind.EMPTY, "empty", {}
        return FieldKind.TOO_SHORT, "too_short", {"min": ctx["min_length"]}
    if kind == "string_too_long":
        return FieldKind.TOO_LONG, "too_long", {"max": ctx["max_length"]}
    field_kind, key = _TYPE_RULES.get(kind, (FieldKind.INVALID_VALUE, "invalid_value"))
    return field_kind, key, {}


def parse_body(model: type[M]) -> M:
    return parse_model(model, json_object())


def parse_json_only_body(model: type[M]) -> M:
    """Like parse_body, for a route a page on another site must not reach: only a body sent as
    `application/json` (415 unsupported_media_type for any other type). A cross-site form or fetch can post
    text/plain without asking (a CORS "simple" request), but application/json only after a preflight that
    the origin passes (CITYLOGIN_CORS_ORIGINS: the operator's own sites)."""
    if request.mimetype != "application/json":
        raise NotJsonMediaType()
    return parse_body(model)


def parse_optional_body(model: type[M]) -> M:
    """Like parse_body, but an empty body means every field takes its default (a body of only
    whitespace is not empty: it is not JSON, 400 invalid_json)."""
    if not request.get_data(cache=True):
        return model()
    return parse_body(model)

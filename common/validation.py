"""Request bodies: JSON object in, a validated pydantic model out, or a problem+json 4xx."""
from __future__ import annotations

import json
from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from common.errors import InvalidField, InvalidJson, MissingFields

M = TypeVar("M", bound=BaseModel)


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
        raise InvalidField(field, f"{field}: {first['msg']}") from None


def parse_body(model: type[M]) -> M:
    return parse_model(model, json_object())


def parse_optional_body(model: type[M]) -> M:
    """Like parse_body, but an empty body means every field takes its default."""
    if not request.get_data(cache=True).strip():
        return model()
    return parse_body(model)

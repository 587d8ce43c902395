"""OpenAPI 3.1 from the same pydantic models that validate the requests.

Views declare themselves with `@operation(...)`; `openapi_document(app)` walks the URL map."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from flask import Flask
from pydantic import BaseModel

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    auth: bool
    errors: tuple[int, ...]


def operation(summary: str, *, body: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, status: int = 200, auth: bool = False,
              errors: tuple[int, ...] = ()) -> Callable:
    """Attach the OpenAPI description of a view function."""
    def attach(view: Callable) -> Callable:
        view.openapi = Operation(summary, body, response, status, auth, errors)
        return view
    return attach


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def _describe(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    problem = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
    responses: dict[str, Any] = {str(op.status): {"description": "Success"}}
    if op.response:
        responses[str(op.status)]["content"] = {
            "application/json": {"schema": _schema_ref(op.response, components)}}
    for status in sorted({400, *op.errors, *((401,) if op.auth else ())}):
        responses[str(status)] = {"description": "Problem details (RFC 9457)", "content": problem}
    described: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if op.body:
        described["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _schema_ref(op.body, components)}}}
    if op.auth:
        described["security"] = [{"bearer": []}]
    return described


PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "code": {"type": "string"}},
}


def openapi_document(app: Flask, *, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        op = getattr(app.view_functions.get(rule.endpoint), "openapi", None)
        if op is None:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _describe(op, components)
    return {
        "openapi": "3.1.0", "info": {"title": title, "version": version}, "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }

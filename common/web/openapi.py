"""OpenAPI 3.1 from the same pydantic models that validate the requests.

Views declare themselves with `@operation(...)`; `openapi_document(app)` walks the URL map."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from flask import Flask
from pydantic import BaseModel

REF = "#/components/schemas/{model}"
JSON = "application/json"
PROBLEM = {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
OAUTH_ERROR = {JSON: {"schema": {"$ref": REF.format(model="OAuthError")}}}
# Path parameter schemas by werkzeug converter; ids are UUIDs, so their routes use `<uuid:...>`.
# Headers that come with some problems: the Bearer challenge (RFC 6750 §3) and when to retry.
PROBLEM_HEADERS = {401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
                   429: {"Retry-After": {"schema": {"type": "integer"}}},
                   503: {"Retry-After": {"schema": {"type": "integer"}}}}
# Statuses the HTTP server in front of the app answers before the app sees the request, so with its
# own body: a request line longer than it reads (gunicorn: 4094 bytes, werkzeug: 65536).
SERVER_STATUSES = {414: "URI Too Long: the HTTP server's limit on the request line (its own body, not "
                        "problem details)"}
PATH_SCHEMAS = {"uuid": {"type": "string", "format": "uuid"}, "int": {"type": "integer"}}
RULE_ARGUMENT = re.compile(r"<(?:([^:<>]+):)?([^<>]+)>")


@dataclass(frozen=True)
class Operation:
    """What a view documents. `errors` lists the statuses of its own rules; the generic ones
    (400 and 413 with a body, 400 with query parameters, 401 with auth, 404 with path parameters,
    414 with any parameter, 503 with DynamoDB) follow from the fields."""

    summary: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: bool | str = False                 # True: Bearer required; "optional": Bearer or the body;
                                             # "app": an app's HTTP Basic credentials (SPEC §11)
    errors: tuple[int, ...] = ()
    body_required: bool = True
    query: type[BaseModel] | None = None     # its fields are the query parameters
    media_type: str = JSON                   # of the success response
    database: bool = True                    # uses DynamoDB, so 503 while it is unreachable
    body_media_type: str = JSON              # of the request body (a form for RFC 7662 introspection)
    error_page: bool = False                 # a browser's 400 (and `errors`) is an HTML page for the person
    pages: tuple[int, ...] = ()              # other statuses answered with an HTML page (a form posted again)
    oauth_errors: bool = False               # refusals in RFC 6749 §5.2's JSON, not problem details

    def __post_init__(self) -> None:
        if self.auth not in (False, True, "optional", "app"):
            raise ValueError(f"{self.summary!r}: auth is True, False, 'optional' or 'app'")
        if self.status not in (204, 303) and self.media_type == JSON and self.response is None:
            raise TypeError(f"{self.summary!r}: a JSON success response needs its response model")


View = TypeVar("View", bound=Callable[..., Any])


def operation(summary: str, **details: Any) -> Callable[[View], View]:
    """Attach the OpenAPI description of a view function; `details` are the fields of Operation."""
    described = Operation(summary, **details)

    def attach(view: View) -> View:
        # A function attribute (functools.wraps carries it to a wrapper), read back by openapi_document.
        view.__dict__["openapi"] = described
        return view
    return attach


def _model_schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, definition in schema.pop("$defs", {}).items():
        _add_component(components, name, definition)
    return schema


def _add_component(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    if components.setdefault(name, schema) != schema:
        # Two models of one name would share one component, and one of them would be described wrongly.
        raise ValueError(f"two different models are both named {name}")


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    _add_component(components, model.__name__, _model_schema(model, components))
    return {"$ref": REF.format(model=model.__name__)}


def _query_schema(field: dict[str, Any]) -> dict[str, Any]:
    # A query string has no null: an optional parameter is one that is left out.
    variants = [v for v in field.get("anyOf", [field]) if v.get("type") != "null"]
    schema = variants[0] if len(variants) == 1 else {"anyOf": variants}
    if field.get("default") is not None:
        schema = {**schema, "default": field["default"]}
    return {k: v for k, v in schema.items() if k not in ("title", "description")}


def _parameters(op: Operation, rule: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": PATH_SCHEMAS.get(converter, {"type": "string"})}
                  for converter, name in RULE_ARGUMENT.findall(rule)]
    if op.query:
        schema = _model_schema(op.query, components)
        for name, field in schema.get("properties", {}).items():
            described = {"name": name, "in": "query", "required": name in schema.get("required", []),
                         "schema": _query_schema(field)}
            if "description" in field:
                described["description"] = field["description"]
            parameters.append(described)
    return parameters


def _success(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    if op.status == 204:
        return {"description": "No content"}
    if op.status == 303:  # a browser sent on (the OpenID Provider's authorization endpoint)
        return {"description": "See Other", "headers": {"Location": {"schema": {"type": "string"}}}}
    schema = _schema_ref(op.response, components) if op.response else {"type": "string"}
    return {"description": "Success", "content": {op.media_type: {"schema": schema}}}


def _error_statuses(op: Operation, has_path_parameters: bool) -> list[int]:
    statuses = set(op.errors)
    statuses |= {400, 413} if op.body else set()   # 413: MAX_CONTENT_LENGTH, SPEC §3
    statuses |= {400} if op.query else set()       # a query parameter out of its range
    statuses |= {401} if op.auth else set()        # "optional" is truthy too
    statuses |= {404} if has_path_parameters else set()
    statuses |= {414} if op.query or has_path_parameters else set()
    statuses |= {503} if op.database else set()
    return sorted(statuses)


def _describe(op: Operation, rule: str, endpoint: str, components: dict[str, Any]) -> dict[str, Any]:
    parameters = _parameters(op, rule, components)
    responses: dict[str, Any] = {str(op.status): _success(op, components)}
    for status in op.pages:
        responses[str(status)] = {"description": "A page for the browser (HTML)",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}
    for status in _error_statuses(op, any(p["in"] == "path" for p in parameters)):
        if status in SERVER_STATUSES:
            responses[str(status)] = {"description": SERVER_STATUSES[status]}
            continue
        responses[str(status)] = {"description": "OAuth 2.0 error (RFC 6749 §5.2)", "content": OAUTH_ERROR} \
            if op.oauth_errors else {"description": "Problem details (RFC 9457)", "content": PROBLEM}
        if op.error_page and (status == 400 or status in op.errors):
            responses[str(status)] = {"description": "An error page in the person's language (HTML), or problem "
                                                     "details for a request the page's checks never saw",
                                      "content": {"text/html": {"schema": {"type": "string"}}, **PROBLEM}}
        if status in PROBLEM_HEADERS:
            responses[str(status)]["headers"] = PROBLEM_HEADERS[status]
    described: dict[str, Any] = {"operationId": endpoint.replace(".", "_"), "summary": op.summary,
                                 "responses": responses}
    if parameters:
        described["parameters"] = parameters
    if op.body:
        described["requestBody"] = {"required": op.body_required, "content": {
            op.body_media_type: {"schema": _schema_ref(op.body, components)}}}
    if op.auth:
        described["security"] = {"optional": [{"bearer": []}, {}], "app": [{"app": []}]}.get(
            str(op.auth), [{"bearer": []}])
    return described


PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "code": {"type": "string"}},
}


OAUTH_ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def openapi_document(app: Flask, *, title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA, "OAuthError": OAUTH_ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        op = getattr(app.view_functions.get(rule.endpoint), "openapi", None)
        if op is None:
            continue
        path = RULE_ARGUMENT.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _describe(op, rule.rule, rule.endpoint, components)
    return {
        "openapi": "3.1.0", "info": {"title": title, "version": version}, "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                                           "app": {"type": "http", "scheme": "basic"}}},
    }

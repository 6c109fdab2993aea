"""The OpenAPI 3.1 description of ``/api/v1``, generated from the endpoint table (served at
``/api/v1/openapi.json``).

Generated, not hand-written, so it cannot drift: each operation's security comes from the endpoint's
:class:`~aiops.http.endpoints.Auth`, its request body schema is the pydantic model that validates it, its
query parameters are the ones the handler reads, and every refusal is documented as an RFC 9457 problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from starlette.responses import Response

import aiops
from aiops.http.endpoints import Auth, Call, Endpoint
from aiops.http.problems import PROBLEM_CONTENT_TYPE, json_response

API_PREFIX: Final = "/api/v1"
SPEC_PATH: Final = f"{API_PREFIX}/openapi.json"

_PROBLEM: Final = {
    "type": "object",
    "description": "RFC 9457 problem details; `error` repeats `detail` for older clients",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "error": {"type": "string"},
        "field": {"type": "string", "description": "dotted path of the field at fault"},
        "error_id": {"type": "string", "description": "find the real error in the daemon's log by this id"},
    },
}
_REFUSALS: Final = {
    "400": "the body or a parameter breaks the schema (the problem names the field)",
    "404": "no such incident or action",
    "409": "the request conflicts with the current state (e.g. approving an action that already ran)",
    "413": "the body is larger than 1 MiB",
    "503": "the store is unavailable; retry later",
}


def build_spec(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """OpenAPI 3.1 for every endpoint under ``/api/v1``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Problem": _PROBLEM}
    for endpoint in endpoints:
        if endpoint.path.startswith(f"{API_PREFIX}/"):
            paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "aiops daemon API", "version": aiops.__version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "server.token of the daemon"}
            },
        },
    }


def _operation(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    problem = {"content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    op: dict[str, Any] = {
        "operationId": f"{endpoint.method.lower()}{endpoint.path.replace('/', '_').replace('{', '').replace('}', '')}",
        "summary": endpoint.summary,
        "security": [{"bearer": []}] if endpoint.auth is Auth.BEARER else [],
        "x-aiops-auth": endpoint.auth.value,
        "responses": {
            str(endpoint.status): {
                "description": "success",
                "content": {endpoint.response_type: {"schema": dict(endpoint.response_schema)}},
            },
            **{code: {"description": why, **problem} for code, why in _REFUSALS.items()},
        },
    }
    if endpoint.auth is Auth.BEARER:
        op["responses"]["401"] = {"description": "missing or wrong bearer token", **problem}
        op["responses"]["403"] = {"description": "no API token configured: write endpoints are off", **problem}
    parameters: list[dict[str, Any]] = []
    if "{id}" in endpoint.path:
        id_schema = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
        parameters.append({"name": "id", "in": "path", "required": True, "schema": id_schema})
    parameters += [
        {"name": q.name, "in": "query", "required": q.required, "description": q.description, "schema": dict(q.schema)}
        for q in endpoint.query
    ]
    if parameters:
        op["parameters"] = parameters
    if endpoint.body_model is not None:
        name = endpoint.body_model.__name__
        schema = endpoint.body_model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    return op


def spec_endpoint(endpoints: Sequence[Endpoint]) -> Endpoint:
    """The endpoint that serves the description of ``endpoints`` and of itself."""
    cache: dict[str, Any] = {}

    def serve(_call: Call) -> Response:
        if "spec" not in cache:
            cache["spec"] = build_spec([*endpoints, this])
        return json_response(200, cache["spec"])

    this = Endpoint(
        "GET",
        SPEC_PATH,
        serve,
        "this OpenAPI description",
        response_schema={"type": "object", "required": ["openapi", "paths"]},
        inline=True,
    )
    return this

"""Every `/api` answer a test receives, checked against `ivr/openapi.py`.

`conforming(client)` wraps a Flask test client: each response to a path under `/api` must be
documented for its operation and status code, with the documented content type, and its JSON
body must validate against the documented schema (OpenAPI 3.0 rules, `$ref`s resolved).
"""

from __future__ import annotations

import re
from typing import Any

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from ivr.openapi import document

_DOC = document()
_REGISTRY = Registry().with_resource("urn:api", Resource.from_contents(_DOC, DRAFT4))
# A path parameter may hold "/" (the routes take `<path:...>`: a reminder's key has one).
_TEMPLATES = [(re.compile("^" + re.sub(r"{\w+}", ".+", path) + "$"), path)
              for path in _DOC["paths"]]


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = _REGISTRY.resolver("urn:api").lookup("urn:api" + node["$ref"]).contents
    return node


def check_response(method: str, path: str, status: int, content_type: str, body: Any) -> None:
    """Raise AssertionError unless this answer is what the document says of it."""
    template = next((t for pattern, t in _TEMPLATES if pattern.match(path)), None)
    operation = _DOC["paths"].get(template, {}).get(method.lower()) if template else None
    if operation is None:  # an undocumented route must not exist: JSON 404/405 only
        assert status in (404, 405), f"{method} {path}: undocumented route answered {status}"
        return
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template}: {status} is not documented"
    documented = _resolve(responses[str(status)])
    media = documented.get("content", {})
    if not media:
        return
    assert content_type.split(";")[0] in media, f"{method} {template} {status}: {content_type}"
    schema = media["application/json"]["schema"]
    if "$ref" in schema:  # resolved against the whole document
        schema = {"$ref": "urn:api" + schema["$ref"]}
    OAS30Validator(schema, registry=_REGISTRY).validate(body)


def conforming(client: Any) -> Any:
    """The same test client, with every `/api` response checked against the document."""
    original = client.open

    def open_checked(*args: Any, **kwargs: Any) -> Any:
        response = original(*args, **kwargs)
        request = response.request
        if request.path.startswith("/api/") and request.path != "/api/openapi.json":
            body = response.get_json(silent=True)
            check_response(request.method, request.path, response.status_code,
                           response.content_type or "", body)
        return response

    client.open = open_checked
    return client

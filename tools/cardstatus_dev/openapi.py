"""The API's OpenAPI document (docs/openapi.json; `make openapi` writes it).

Generated from the routes and response models of the real handler module
(`functions.api.app`), then post-processed: Powertools documents its own 422 validation
answer on every route, but this API answers 400 with the common error body instead, so
those entries (and the schemas only they used) are removed; every GET gets its HEAD twin
(the handler answers HEAD as GET without the body); the SigV4 scheme is added.
Build-time only: nothing here runs in Lambda.
"""

from __future__ import annotations

import json
from typing import Any

from cardstatus_dev.paths import import_function

API_TITLE = "cardstatus"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Delivery status of payment cards. Internal callers sign requests with "
    "AWS SigV4 (API Gateway IAM authorisation). Every error is "
    '{"error": {"code": ..., "message": ...}}.'
)


# Functions other than `api` that serve routes of the same REST API (their own IAM permission
# in the stack); their routes are part of the one document.
OTHER_FUNCTIONS = ("void",)


def openapi_schema(resolver: Any = None) -> dict[str, Any]:
    """The OpenAPI 3 document of the API as a dict (resolver: the API's Powertools resolver,
    by default `functions.api.app.app` of this checkout, plus the routes of OTHER_FUNCTIONS)."""
    resolvers = [resolver]
    if resolver is None:
        resolvers = [import_function(name).app for name in ("api", *OTHER_FUNCTIONS)]
    doc = _document(resolvers[0])
    for other in resolvers[1:]:
        extra = _document(other)
        doc["paths"].update(extra.get("paths", {}))
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in extra.get("components", {}).get("schemas", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"schema {name} differs between the functions: rename one")
        known = {tag.get("name") for tag in doc.get("tags", [])}
        doc.setdefault("tags", []).extend(
            t for t in extra.get("tags", []) if t.get("name") not in known
        )
        if not doc["tags"]:
            del doc["tags"]
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    for operations in doc.get("paths", {}).values():
        if "get" in operations:
            operations["head"] = head_operation(operations["get"])
    schemas = doc["components"]["schemas"]
    reachable = referenced_schemas(doc["paths"], schemas)
    for name in [n for n in schemas if n not in reachable]:
        del schemas[name]  # Powertools' validation-error schemas, now unused
    doc["components"]["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (IAM)",
        }
    }
    doc["security"] = [{"sigv4": []}]
    return doc


def head_operation(get: dict[str, Any]) -> dict[str, Any]:
    """The HEAD twin of a GET operation: same parameters and statuses, no body."""
    operation_id = get.get("operationId", "get")
    head: dict[str, Any] = {
        "tags": get.get("tags", []),
        "summary": f"HEAD of {operation_id}: the same status and headers, no body",
        "operationId": f"{operation_id}Head",
    }
    if "parameters" in get:
        head["parameters"] = get["parameters"]
    head["responses"] = {
        status: {k: v for k, v in response.items() if k != "content"}
        for status, response in get.get("responses", {}).items()
    }
    return head


def _document(resolver: Any) -> dict[str, Any]:
    return json.loads(
        resolver.get_openapi_json_schema(
            title=API_TITLE, version=API_VERSION, description=API_DESCRIPTION
        )
    )


def referenced_schemas(root: Any, schemas: dict[str, Any]) -> set[str]:
    """Names of the component schemas reachable from root through $ref."""
    prefix = "#/components/schemas/"
    found: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] not in found:
                name = ref[len(prefix) :]
                found.add(name)
                stack.append(schemas.get(name))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def openapi_json(resolver: Any = None) -> str:
    """docs/openapi.json, byte for byte."""
    return json.dumps(openapi_schema(resolver), indent=2, ensure_ascii=False) + "\n"

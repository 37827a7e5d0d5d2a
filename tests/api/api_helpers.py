"""API test helpers: fake Lambda context, events/api/ samples, answers checked against OpenAPI."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg2.extensions
from jsonschema import Draft202012Validator
from lambda_context import FakeLambdaContext

ROOT = Path(__file__).resolve().parents[2]
API_EVENTS = ROOT / "events" / "api"
OPENAPI_PATH = ROOT / "docs" / "openapi.json"


FakeContext = partial(FakeLambdaContext, function_name="cardstatus-api-test", remaining_ms=10000)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((API_EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def event_for(
    path: str, query: dict[str, str] | None = None, method: str = "GET"
) -> dict[str, Any]:
    """A REST proxy event like the samples, for a path and decoded query parameters."""
    from cardstatus_dev.serve import build_event

    event = build_event(method, path)
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    return event


class Api:
    """Calls the handler and checks every answer against the committed OpenAPI document."""

    def __init__(self, module: ModuleType, doc: dict[str, Any]) -> None:
        self.module = module
        self.doc = doc

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        result = self.module.handler(event, FakeContext())
        status = int(result["statusCode"])
        headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
        for k, values in (result.get("multiValueHeaders") or {}).items():
            headers.setdefault(k, str(values[-1]))
        body = json.loads(result["body"]) if result.get("body") else None
        self.check(event, status, body)
        return status, headers, body

    def raw(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.module.handler(event, FakeContext())

    def check(self, event: dict[str, Any], status: int, body: Any) -> None:
        """Body of a documented operation validates against its documented response schema."""
        assert isinstance(body, dict), body
        if status >= 400:
            assert set(body) == {"error"}, body
            assert set(body["error"]) == {"code", "message"}, body
        operation = self._operation(event)
        if operation is None:  # unknown route / method: only the common error body applies
            schema: dict[str, Any] = {"$ref": "#/components/schemas/ErrorResponse"}
        else:
            response = operation["responses"].get(str(status))
            assert response is not None, f"status {status} not documented for {event['resource']}"
            schema = response["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": self.doc["components"]})
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, [e.message for e in errors]

    def _operation(self, event: dict[str, Any]) -> dict[str, Any] | None:
        resource = event.get("resource", "")
        item = self.doc["paths"].get(resource)
        if item is None:
            return None
        return item.get(event["httpMethod"].lower())


class CountingCursor(psycopg2.extensions.cursor):
    """A cursor that notes every statement it sends (one execute, one round trip): set it as a
    connection's cursor_factory and read `CountingCursor.statements`."""

    statements: list[str] = []

    def execute(self, query: Any, vars: Any = None) -> None:
        type(self).statements.append(str(query))
        super().execute(query, vars)

"""docs/openapi.json is generated from the handler and committed: drift fails here."""

from __future__ import annotations

from typing import Any

from api_helpers import OPENAPI_PATH


def test_committed_openapi_document_matches_the_code() -> None:
    from cardstatus_dev.openapi import openapi_json

    generated = openapi_json()
    committed = OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == generated, "docs/openapi.json is stale: run `make openapi` and commit it"


def test_document_is_complete(openapi_doc: dict[str, Any]) -> None:
    assert openapi_doc["openapi"].startswith("3.")
    paths = openapi_doc["paths"]
    # void and erase: functions/void, each with its own permission
    posts = {"/cards/search", "/files/{file_id}/void", "/privacy/erase"}
    assert set(paths) == {
        "/get_card_status",
        "/cards/search",
        "/cards/{card_id}",
        "/cards",
        "/health",
        "/files",
        "/files/{file_id}",
        "/files/{file_id}/rejects",
        "/files/{file_id}/void",
        "/files/{file_id}/cards",
        "/files/{file_id}/void_preview",
        "/files/{file_id}/rejects.csv",
        "/stuck_cards",
        "/partners",
        "/partners/{partner}",
        "/phone_conflicts",  # README "Card ownership"
        "/privacy/erase",  # README "Privacy"
    }
    for path, item in paths.items():
        method = "post" if path in posts else "get"
        assert set(item) == ({"post"} if method == "post" else {"get", "head"}), path
        responses = item[method]["responses"]
        assert "422" not in responses, path  # validation errors are 400 here
        if method == "get":  # HEAD: the same statuses, no body
            assert set(item["head"]["responses"]) == set(responses), path
            assert all("content" not in r for r in item["head"]["responses"].values()), path
        for status, response in responses.items():
            if path.endswith(".csv") and status == "200":  # a download: text/csv
                assert set(response["content"]) == {"text/csv"}, path
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema.get("$ref", "").startswith("#/components/schemas/"), (path, status)
            if status != "200":
                assert schema["$ref"].endswith("ErrorResponse"), (path, status)
    for name, schema in openapi_doc["components"]["schemas"].items():
        if schema.get("type") == "object" and name != "FileReportOut":  # the stored report, open
            assert schema.get("additionalProperties") is False, name
    error = openapi_doc["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"}

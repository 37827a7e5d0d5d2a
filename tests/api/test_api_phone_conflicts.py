"""GET /phone_conflicts through the real handler (README "Card ownership"): copies of one event
with different phones, listed for ops without any phone, paged, with the error model."""

from __future__ import annotations

import io
import json
from typing import Any

from api_helpers import Api, event_for

from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest

HEADER = b"Card ID,User contact,Timestamp\n"


def _ingest(db: Any, data: bytes, name: str) -> dict[str, Any]:
    source = SourceInfo(key=f"incoming/acme/{name}", partner="acme")
    return ingest(db, io.BytesIO(data), source, load_settings())


def test_phone_conflicts_are_listed_without_phones_and_paged(api: Api, db: Any) -> None:
    first = _ingest(db, HEADER + b"PCA1,0501111111,2023-11-14T12:00:00Z\n", "a - Delivered.csv")
    second = _ingest(
        db,
        HEADER + b"PCA1,0502222222,2023-11-14T12:00:00Z\nPCA2,0502222222,2023-11-15T12:00:00Z\n",
        "b - Delivered.csv",
    )
    status, _, body = api.call(event_for("/phone_conflicts", {}))
    assert status == 200, body
    assert body["next_cursor"] is None
    [conflict] = body["conflicts"]
    assert conflict["card_id"] == "PCA1" and conflict["status"] == "DELIVERED"
    assert (conflict["file_id"], conflict["line"]) == (second["file_id"], 2)
    assert (conflict["other_file_id"], conflict["other_line"]) == (first["file_id"], 2)
    assert conflict["partner"] == conflict["other_partner"] == conflict["owner_partner"] == "acme"
    assert conflict["occurred_at"] == "2023-11-14T12:00:00Z"
    text = json.dumps(body)
    assert "501111111" not in text and "502222222" not in text


def test_phone_conflicts_bad_parameters_are_400_with_the_error_model(api: Api, db: Any) -> None:
    for query in ({"cursor": "not-a-cursor"}, {"limit": "0"}, {"since": "yesterday"}):
        status, _, body = api.call(event_for("/phone_conflicts", query))
        assert status == 400, (query, body)
        assert body["error"]["code"] == "invalid_parameter"

"""Done-when of the API issue: the shared partner samples, ingested by the real pipeline, served."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fixture_paths import PARTNER_SAMPLES

SAMPLES = PARTNER_SAMPLES


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def sample_server(api_module: Any, db: Any) -> Iterator[str]:
    from cardstatus.config import settings
    from cardstatus.ingest import ingest_path
    from cardstatus_dev.serve import make_server

    files = sorted(SAMPLES.glob("*.csv"))
    assert len(files) == 4, f"partner samples missing in {SAMPLES}"
    for path in files:
        report = ingest_path(db, path, settings())
        assert report["outcome"] == "applied", report
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_samples_served(sample_server: str) -> None:
    status, body = _get(f"{sample_server}/get_card_status?card_id=ZYW8890")
    assert status == 200
    assert body["status"] == "RETURNED"
    assert [h["status"] for h in body["history"]] == ["RETURNED", "DELIVERY_EXCEPTION", "PICKED_UP"]
    assert body["history"][1]["reason"] == "recipient_unavailable"
    assert body["user_phone"] == "********4534"

    status, body = _get(f"{sample_server}/get_card_status?user_phone=0545576586")
    assert (status, body["card_id"], body["status"]) == (200, "ZYW7631", "DELIVERED")

    status, body = _get(f"{sample_server}/get_card_status?card_id=NOPE")
    assert status == 404
    assert body == {
        "error": {"code": "not_found", "message": "no card matches the given parameters"}
    }

    status, body = _get(f"{sample_server}/cards?user_phone=585949014")
    assert (status, [c["card_id"] for c in body["cards"]]) == (200, ["ZYW8827"])

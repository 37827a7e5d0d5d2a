"""API fixtures: the real handler module on the test database, seeded data, captured logs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from api_helpers import OPENAPI_PATH, Api


@pytest.fixture(scope="session")
def openapi_doc() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def api_module(db_url: str) -> Iterator[ModuleType]:
    """functions/api/app.py with its module-level connection pointed at the test database."""
    from cardstatus_dev.serve import load_api_module

    app = load_api_module()
    app.DB.reset_settings(None)  # next get() reads the freshly set DATABASE_URL
    yield app
    app.DB.reset_settings(None)


@pytest.fixture
def api(api_module: ModuleType, openapi_doc: dict[str, Any]) -> Api:
    return Api(api_module, openapi_doc)


@pytest.fixture
def seeded(db: Any) -> Any:
    from api_seed import seed_cards

    seed_cards(db)
    return db


@pytest.fixture
def captured_logs(api_module: ModuleType) -> Iterator[io.StringIO]:
    """Everything the handler's Powertools logger writes (formatted JSON lines)."""
    stream = io.StringIO()
    handler = api_module.logger.registered_handler
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)

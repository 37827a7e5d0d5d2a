"""SnapStart runtime hooks of the api (functions/api/snapstart.py): the before-snapshot warm-up
needs no database and leaves no metrics, context or connection behind; after a restore the
connection is dropped and `random` reseeded. No database needed."""

from __future__ import annotations

import io
import random
from types import ModuleType
from typing import Any

import pytest

from functions.api import snapstart


class _NoDatabase:
    """A LazyConnection stand-in that fails the test if anything asks for a connection."""

    def __init__(self) -> None:
        self.discarded = 0

    def get(self) -> Any:
        raise AssertionError("the warm-up must not touch the database")

    def discard(self) -> None:
        self.discarded += 1


@pytest.fixture
def app_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    from functions.api import app as module

    monkeypatch.setattr(module, "DB", _NoDatabase())
    return module


def test_warm_answers_without_the_database_and_leaves_no_trace(app_module: ModuleType) -> None:
    db = app_module.DB
    level = app_module.logger.log_level
    snapstart.warm(app_module.app, db)
    assert db.discarded == 1
    assert app_module.metrics.metric_set == {}
    assert app_module.metrics.dimension_set == {}
    assert app_module.app.context == {}
    assert app_module.logger.log_level == level


def test_warm_builds_the_models_of_every_route_with_parameters(app_module: ModuleType) -> None:
    snapstart.warm(app_module.app, app_module.DB)
    routes = app_module.app._static_routes + app_module.app._dynamic_routes
    built = {route.path for route in routes if route._dependant is not None}
    assert {"/get_card_status", "/cards", "/cards/<card_id>", "/cards/search"} <= built
    assert {"/files", "/files/<file_id>", "/files/<file_id>/rejects", "/stuck_cards"} <= built


def test_requests_after_the_warm_up_are_logged_and_answered(app_module: ModuleType) -> None:
    from cardstatus_dev.serve import LocalContext

    snapstart.warm(app_module.app, app_module.DB)
    event = snapstart._event("GET", "/get_card_status", None)
    captured_logs = io.StringIO()
    log_handler = app_module.logger.registered_handler
    previous = log_handler.setStream(captured_logs)
    try:
        result = app_module.handler(event, LocalContext())
    finally:
        log_handler.setStream(previous)
    assert result["statusCode"] == 400
    assert '"missing_parameter"' in result["body"]
    assert '"outcome":"invalid"' in captured_logs.getvalue().replace(" ", "")


def test_after_restore_drops_the_connection_and_reseeds_random() -> None:
    db = _NoDatabase()
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    snapstart.after_restore(db)  # type: ignore[arg-type]
    assert db.discarded == 1
    assert random.random() != expected


def test_hooks_registered_with_the_runtime(app_module: ModuleType) -> None:
    calls: list[tuple[str, Any, tuple[Any, ...]]] = []

    class Hooks:
        def register_before_snapshot(self, func: Any, *args: Any) -> None:
            calls.append(("before", func, args))

        def register_after_restore(self, func: Any, *args: Any) -> None:
            calls.append(("after", func, args))

    assert snapstart.register(app_module.app, app_module.DB, Hooks())
    assert calls == [
        ("before", snapstart.warm, (app_module.app, app_module.DB)),
        ("after", snapstart.after_restore, (app_module.DB,)),
    ]


def test_no_runtime_no_hooks(app_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapstart, "_runtime_hooks", None)
    assert not snapstart.register(app_module.app, app_module.DB)

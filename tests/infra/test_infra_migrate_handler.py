"""The deploy-time migrate Lambda (custom resource onEvent) against a real PostgreSQL."""

from __future__ import annotations

import importlib
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from cardstatus import config
from cardstatus.migrate import available_migrations, migrations_fingerprint
from infra.migrations import migrations_fingerprint as synth_time_fingerprint


def _load() -> ModuleType:
    """The handler module as Lambda imports it (`functions.migrate.app.handler`)."""
    return importlib.import_module("functions.migrate.app")


CONTEXT = SimpleNamespace(
    function_name="migrate",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:migrate",
    memory_limit_in_mb=256,
    aws_request_id="req-1",
    log_group_name="/aws/lambda/migrate",
    log_stream_name="stream",
)


def _event(request: str, **props: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResourceProperties": {"ServiceToken": "arn", **props},
        "PhysicalResourceId": "cardstatus-schema-migrations" if request != "Create" else None,
    }


def test_synth_time_fingerprint_matches_the_runtime_one() -> None:
    assert synth_time_fingerprint() == migrations_fingerprint()


@pytest.fixture
def empty_db(pg_admin_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from cardstatus_dev.database import drop_database, ensure_database

    name = "cs_infra_migrate_handler"
    drop_database(pg_admin_url, name)
    monkeypatch.setenv("DATABASE_URL", ensure_database(pg_admin_url, name))
    config.reset_settings_cache()
    yield
    config.reset_settings_cache()
    drop_database(pg_admin_url, name)


def test_create_applies_then_update_is_a_noop(empty_db: Any) -> None:
    handler = _load().handler
    fp = migrations_fingerprint()
    first = handler(_event("Create", MigrationsFingerprint=fp), CONTEXT)
    versions = [m.version for m in available_migrations()]
    assert first["PhysicalResourceId"] == "cardstatus-schema-migrations"
    assert first["Data"]["Applied"].split(",") == versions
    again = handler(_event("Update", MigrationsFingerprint=fp), CONTEXT)
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert again["Data"]["AppliedCount"] == "0"
    assert again["Data"]["LatestVersion"] == versions[-1]


def test_delete_is_a_noop_without_database() -> None:
    out = _load().handler(_event("Delete"), CONTEXT)
    assert out == {"PhysicalResourceId": "cardstatus-schema-migrations"}


def test_fingerprint_mismatch_fails_the_deploy(empty_db: Any) -> None:
    with pytest.raises(RuntimeError, match="differ from the deployed template"):
        _load().handler(_event("Update", MigrationsFingerprint="0" * 64), CONTEXT)


def test_unreachable_database_fails_the_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    from cardstatus.db import DatabaseUnavailable

    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    config.reset_settings_cache()
    try:
        with pytest.raises(DatabaseUnavailable):
            _load().handler(
                _event("Create", MigrationsFingerprint=migrations_fingerprint()), CONTEXT
            )
    finally:
        config.reset_settings_cache()

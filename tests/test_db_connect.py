"""How functions log in: ingest with an IAM token as its own role, directly to the instance."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cardstatus import db, dbroles
from cardstatus.config import load_settings


def _no_secret(*_: Any, **__: Any) -> Any:
    raise AssertionError("an IAM-authenticated function must not read the master secret")


def test_ingest_connects_with_an_iam_token_to_the_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = "cardstatus-prod-db.abc123.me-central-1.rds.amazonaws.com"
    for key in ("DATABASE_URL", "DB_SECRET_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DB_HOST", host)
    monkeypatch.setenv("DB_USER", dbroles.INGEST)
    monkeypatch.setenv("DB_IAM_AUTH", "true")
    monkeypatch.setenv("DB_SSLROOTCERT", "/opt/python/cardstatus/certs/rds-global-bundle.pem")
    monkeypatch.setenv("AWS_REGION", "me-central-1")
    monkeypatch.setattr(db, "_read_secret", _no_secret)
    kwargs = db.connection_kwargs(load_settings())
    assert kwargs["host"] == host and kwargs["user"] == dbroles.INGEST
    assert kwargs["sslmode"] == "verify-full" and kwargs["sslrootcert"].endswith(".pem")
    token = urlsplit("https://" + kwargs["password"])
    assert token.hostname == host
    query = parse_qs(token.query)
    assert query["Action"] == ["connect"] and query["DBUser"] == [dbroles.INGEST]
    assert "me-central-1/rds-db/aws4_request" in query["X-Amz-Credential"][0]

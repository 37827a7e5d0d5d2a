"""cardstatus.db keeps one botocore session per process: an IAM token no longer reloads the
RDS service model, while changed or expiring credentials are still picked up."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.loaders
import botocore.session
import pytest
from botocore.credentials import CredentialProvider, RefreshableCredentials

from cardstatus import db

HOST = "cardstatus-prod-db.abc123.eu-west-1.rds.amazonaws.com"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFIRST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setattr(db, "_session", None)


def _token_key_id() -> str:
    client = db.aws_client("rds", "eu-west-1")
    token = client.generate_db_auth_token(DBHostname=HOST, Port=5432, DBUsername="u")
    return parse_qs(urlsplit("https://" + token).query)["X-Amz-Credential"][0].split("/")[0]


def test_one_session_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Any] = []
    real = botocore.session.get_session

    def counting() -> Any:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(botocore.session, "get_session", counting)
    for _ in range(3):
        _token_key_id()
    db.aws_client("s3")
    assert len(made) == 1
    assert db.aws_session() is made[0]


def test_later_tokens_do_not_reload_the_service_model(monkeypatch: pytest.MonkeyPatch) -> None:
    _token_key_id()  # warm-up: the first one loads the RDS model and the endpoints
    reads: list[str] = []
    real = botocore.loaders.JSONFileLoader.load_file

    def counting(self: Any, file_path: str) -> Any:
        reads.append(file_path)
        return real(self, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", counting)
    start = time.perf_counter()
    for _ in range(5):
        _token_key_id()
    per_token_ms = (time.perf_counter() - start) / 5 * 1000
    # A new session per token re-read the model files each time (~70 ms a token).
    assert reads == []
    print(f"\nIAM token with the kept session: {per_token_ms:.1f} ms")


def test_changed_credentials_in_the_environment_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _token_key_id() == "AKIDFIRST"
    first = db.aws_session()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSECOND")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-2")
    assert _token_key_id() == "AKIDSECOND"
    assert db.aws_session() is not first
    assert db.aws_session() is db.aws_session()


class _Expiring(CredentialProvider):  # type: ignore[misc]
    """Like the container provider (SnapStart, ECS): credentials that expire and renew."""

    METHOD = "test-expiring"

    def __init__(self) -> None:
        self.fetches = 0

    def _fetch(self) -> dict[str, str]:
        self.fetches += 1
        # Already inside the mandatory refresh window: every use fetches anew.
        expiry = datetime.now(UTC) + timedelta(seconds=30)
        return {
            "access_key": f"AKIDROTATED{self.fetches}",
            "secret_key": "s",
            "token": "t",
            "expiry_time": expiry.isoformat(),
        }

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(self._fetch(), self._fetch, self.METHOD)


def test_expiring_credentials_refresh_in_the_kept_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = _Expiring()
    db.aws_session().get_component("credential_provider").insert_before("env", provider)
    seen = {_token_key_id() for _ in range(3)}
    assert len(seen) == 3 and all(k.startswith("AKIDROTATED") for k in seen)
    assert provider.fetches >= 3


def test_clients_from_many_threads_share_the_session() -> None:
    errors: list[BaseException] = []
    keys: list[str] = []

    def work() -> None:
        try:
            keys.append(_token_key_id())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert keys == ["AKIDFIRST"] * 8

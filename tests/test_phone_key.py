"""The phone hash and its key (README "Privacy", docs/DEPLOY.md "Phone hash key"): the key ring,
the local key file, the backfill of phones stored before migration 0013, and a key rotation
with lookups during every step of it (including processes that still hold the ring of the
step before)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cardstatus import cards, config, phonehash
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest
from cardstatus.phonebackfill import backfill_phones
from cardstatus.void import void_file
from cardstatus_dev import phonekey
from cardstatus_dev.cli import main

KEY_1 = "k1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
KEY_2 = "k2-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def _use_ring(monkeypatch: pytest.MonkeyPatch, ring: dict[str, Any] | str) -> None:
    monkeypatch.setenv("PHONE_KEY", ring if isinstance(ring, str) else json.dumps(ring))
    config.reset_settings_cache()
    phonehash.reset_key_ring()


@pytest.fixture(autouse=True)
def _fresh_ring() -> Iterator[None]:
    phonehash.reset_key_ring()
    yield
    config.reset_settings_cache()
    phonehash.reset_key_ring()


def test_hash_is_hmac_sha256_of_the_e164_number_under_the_current_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use_ring(monkeypatch, {"current": {"version": 3, "key": KEY_1}})
    expected = hmac.new(KEY_1.encode(), b"+971585949014", hashlib.sha256).hexdigest()
    assert phonehash.hash_phone("+971585949014") == (expected, 3)
    assert phonehash.lookup_hashes("+971585949014") == [expected]
    columns = phonehash.copy_columns()
    assert columns("+971585949014") == f"{expected}\t3\t9014"
    assert columns("+971585949014") == f"{expected}\t3\t9014"  # memoised: same text
    assert phonehash.mask_last4("9014") == "********9014"
    assert phonehash.mask_last4(None) is None


def test_lookups_try_current_next_previous_older_in_that_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    k = {v: f"key-{v}-" + "x" * 40 for v in (1, 2, 3, 4)}
    ring = {
        "current": {"version": 3, "key": k[3]},
        "next": {"version": 4, "key": k[4]},
        "previous": {"version": 2, "key": k[2]},
        "older": [{"version": 1, "key": k[1]}],
    }
    _use_ring(monkeypatch, ring)
    want = [
        hmac.new(k[v].encode(), b"+971501234567", hashlib.sha256).hexdigest() for v in (3, 4, 2, 1)
    ]
    assert phonehash.lookup_hashes("+971501234567") == want
    assert phonehash.hash_phone("+971501234567") == (want[0], 3)
    assert phonehash.parse_key_ring(json.dumps(ring)).to_json() == ring


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"current": {"version": 1, "key": "short"}}',
        '{"current": {"version": 0, "key": "' + "s" * 40 + '"}}',
        '{"current": {"version": 1, "key": "' + "s" * 40 + '"}, "previous": '
        '{"version": 1, "key": "' + "t" * 40 + '"}}',
    ],
)
def test_a_malformed_ring_fails_without_echoing_key_material(text: str) -> None:
    with pytest.raises(phonehash.PhoneKeyError) as caught:
        phonehash.parse_key_ring(text)
    assert "s" * 20 not in str(caught.value) and "t" * 20 not in str(caught.value)


def test_the_stack_generated_flat_secret_is_a_one_key_ring() -> None:
    ring = phonehash.parse_key_ring(json.dumps({"version": 1, "key": "g" * 64}))
    assert ring.current == phonehash.PhoneKey(1, "g" * 64) and ring.older == ()


def test_no_key_configured_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PHONE_KEY", "PHONE_KEY_SECRET_ARN", "PHONE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    config.reset_settings_cache()
    phonehash.reset_key_ring()
    with pytest.raises(phonehash.PhoneKeyError, match="PHONE_KEY_SECRET_ARN"):
        phonehash.hash_phone("+971585949014")


def test_the_key_is_read_from_secrets_manager_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(
            Name="phone-key", SecretString=json.dumps({"version": 1, "key": KEY_1})
        )["ARN"]
        monkeypatch.delenv("PHONE_KEY")
        monkeypatch.setenv("PHONE_KEY_SECRET_ARN", arn)
        config.reset_settings_cache()
        phonehash.reset_key_ring()
        first = phonehash.hash_phone("+971585949014")
        client.put_secret_value(SecretId=arn, SecretString=json.dumps({"version": 9, "key": KEY_2}))
        assert phonehash.hash_phone("+971585949014") == first  # read once per process
    assert first[1] == 1


def test_a_local_key_file_is_created_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHONE_KEY")
    monkeypatch.delenv("PHONE_KEY_FILE", raising=False)
    path = phonekey.use_phone_key(tmp_path)
    assert path == tmp_path / "phone-key.json"
    assert os.environ["PHONE_KEY_FILE"] == str(path)
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    first = phonehash.hash_phone("+971585949014")
    monkeypatch.delenv("PHONE_KEY_FILE")
    assert phonekey.use_phone_key(tmp_path) == path
    assert path.read_text() == text  # not regenerated: the stored hashes stay valid
    assert phonehash.hash_phone("+971585949014") == first
    # a configured key wins over the local file
    monkeypatch.setenv("PHONE_KEY", json.dumps({"version": 1, "key": KEY_1}))
    assert phonekey.use_phone_key(tmp_path) is None


def _ingest(db: Any, name: str, rows: list[str]) -> dict[str, Any]:
    data = ("Card ID,Phone,Timestamp\n" + "\n".join(rows) + "\n").encode()
    import io

    source = SourceInfo(key=name, partner="acme", size_bytes=len(data))
    return ingest(db, io.BytesIO(data), source, load_settings())


def _ids(db: Any, phone: str) -> list[str]:
    return sorted(c["card_id"] for c in cards.phone_cards(db, cards.parse_phone(phone))["cards"])


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["phone-key", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_rotation_with_lookups_during_every_step(
    db: Any,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "phone-key.json"
    phonekey.write_key_file(key_file, json.dumps({"current": {"version": 1, "key": KEY_1}}))
    monkeypatch.delenv("PHONE_KEY")
    monkeypatch.setenv("PHONE_KEY_FILE", str(key_file))
    config.reset_settings_cache()
    phonehash.reset_key_ring()
    ring_0 = key_file.read_text()

    # Before: every row under key 1.
    a = _ingest(
        db,
        "a pickup.csv",
        ["R1,0585949014,2024-01-01T10:00:00Z", "R2,0501234567,2024-01-01T11:00:00Z"],
    )
    assert a["outcome"] == "applied"

    # Step 1: a next key is announced. Writers still use key 1; every reader knows key 2.
    assert _cli(capsys, "rotate") == (
        0,
        {"current": 1, "next": 2, "older": []},
    )
    ring_1 = key_file.read_text()
    assert _ids(db, "0585949014") == ["R1"]
    b = _ingest(db, "b pickup.csv", ["R3,+971 58 594 9014,2024-01-02T10:00:00Z"])
    assert b["outcome"] == "applied"
    assert _ids(db, "585949014") == ["R1", "R3"]

    # Step 2: key 2 becomes current, key 1 previous. New rows use key 2.
    assert _cli(capsys, "promote") == (
        0,
        {"current": 2, "next": None, "older": [1]},
    )
    c = _ingest(
        db,
        "c delivered.csv",
        ["R4,971585949014,2024-01-03T10:00:00Z", "R2,0501234567,2024-01-03T11:00:00Z"],
    )
    assert c["outcome"] == "applied"
    with db.cursor() as cur:
        cur.execute("SELECT card_id, phone_key FROM card ORDER BY 1")
        assert cur.fetchall() == [("R1", 1), ("R2", 2), ("R3", 1), ("R4", 2)]
    db.commit()
    # Readers on every ring of the rotation find every row they must:
    assert _ids(db, "+971585949014") == ["R1", "R3", "R4"]  # the new ring (2, then 1)
    _use_ring(monkeypatch, ring_1)  # a process still on step 1's ring (1, next 2)
    assert _ids(db, "+971585949014") == ["R1", "R3", "R4"]
    assert _ids(db, "0501234567") == ["R2"]
    _use_ring(monkeypatch, ring_0)  # a process that skipped step 1 misses the new rows:
    assert _ids(db, "+971585949014") == ["R1", "R3"]  # why step 1 comes first (DEPLOY.md)
    monkeypatch.delenv("PHONE_KEY")
    config.reset_settings_cache()
    phonehash.reset_key_ring()

    # Key 1 stays while rows carry it; it goes once they are gone (here: voided).
    code, status = _cli(capsys, "status", "--database-url", db_url)
    assert code == 0 and status["current"] == 2 and status["older"] == [1]
    assert status["rows"]["card"] == {"1": 2, "2": 2} and status["retirable"] == []
    assert json.loads(key_file.read_text())["current"]["key"] not in json.dumps(status)
    code, refused = _cli(capsys, "retire", "1", "--database-url", db_url)
    assert code == 1 and "rows still carry it" in refused["error"]["message"]
    for report in (a, b):
        void_file(db, report["file_id"], "rotation test", "tester")
    code, status = _cli(capsys, "status", "--database-url", db_url)
    assert status["rows"]["card"] == {"2": 2} and status["retirable"] == [1]
    assert _cli(capsys, "retire", "1", "--database-url", db_url) == (
        0,
        {"current": 2, "next": None, "older": []},
    )
    assert _ids(db, "0585949014") == ["R4"] and _ids(db, "0501234567") == ["R2"]


def test_backfill_hashes_phones_stored_in_full_and_nulls_them(db: Any) -> None:
    """A database from before 0013: numbers in the `phone` columns become hashes, once."""
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)"
            " VALUES (7, 'old.csv', 'a', 'applied', '{}', now())"
        )
        cur.execute(
            "INSERT INTO card_event (card_id, status, occurred_at, phone, partner,"
            " source_file_id, source_line) VALUES"
            " ('C1', 'PICKED_UP', '2024-01-01T10:00Z', '+971501234567', 'a', 7, 2),"
            " ('C2', 'PICKED_UP', '2024-01-01T10:00Z', '+971585949014', 'a', 7, 3)"
        )
        cur.execute(
            "INSERT INTO event_copy (file_id, card_id, status, occurred_at, line, phone, partner)"
            " SELECT 7, card_id, status, occurred_at, source_line, phone, partner FROM card_event"
        )
        cur.execute(
            "INSERT INTO card (card_id, status, status_at, phone, phone_at, phone_rank) VALUES"
            " ('C1', 'PICKED_UP', '2024-01-01T10:00Z', '+971501234567', '2024-01-01T10:00Z',"
            "  'PICKED_UP'),"
            " ('C2', 'PICKED_UP', '2024-01-01T10:00Z', '+971585949014', '2024-01-01T10:00Z',"
            "  'PICKED_UP')"
        )
    db.commit()
    assert backfill_phones(db, batch=1) == {"card": 2, "card_event": 2, "event_copy": 2}
    assert backfill_phones(db) == {"card": 0, "card_event": 0, "event_copy": 0}
    digest, version = phonehash.hash_phone("+971501234567")
    with db.cursor() as cur:
        for table in ("card", "card_event", "event_copy"):
            cur.execute(
                f"SELECT phone, phone_hash, phone_key, phone_last4 FROM {table}"
                " WHERE card_id = 'C1'"
            )
            assert cur.fetchall() == [(None, digest, version, "4567")]
    db.commit()
    body = cards.find_card_status(db, None, "0501234567")
    assert body["card_id"] == "C1" and body["user_phone"] == "********4567"


def test_rotate_and_promote_the_stacks_secret(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`phone-key rotate/promote --secret-arn` rewrite the secret the stack generated."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        arn = client.create_secret(
            Name="phone-key", SecretString=json.dumps({"version": 1, "key": KEY_1})
        )["ARN"]
        assert _cli(capsys, "rotate", "--secret-arn", arn, "--database-url", db_url) == (
            0,
            {"current": 1, "next": 2, "older": []},
        )
        assert _cli(capsys, "promote", "--secret-arn", arn, "--database-url", db_url) == (
            0,
            {"current": 2, "next": None, "older": [1]},
        )
        ring = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
        assert ring["previous"] == {"version": 1, "key": KEY_1}
        assert ring["current"]["version"] == 2 and len(ring["current"]["key"]) >= 43
        code, out = _cli(capsys, "promote", "--secret-arn", arn, "--database-url", db_url)
        assert code == 1 and "no next key" in out["error"]["message"]


@pytest.mark.parametrize("length", [1, 32, 43, 63, 64, 65, 200])
def test_the_precomputed_hmac_equals_the_standard_library_for_any_key_length(length: int) -> None:
    key = ("k" * length).encode()
    for message in (b"", b"+971585949014", b"x" * 100):
        assert (
            phonehash._Hmac(key).hexdigest(message) == hmac.new(key, message, "sha256").hexdigest()
        )

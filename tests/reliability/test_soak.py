"""(7) Load and soak on loopback: `cardstatus serve` (make_server around the real API handler)
under bounded load while files are ingested → zero errors, and every card read is consistent
(its status is the latest event of its history by (time, rank))."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import psycopg2
import pytest
import rel_support as rs

from cardstatus_dev.serve import load_api_module, make_server


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def check_card(card: dict[str, Any]) -> None:
    """A card object is internally consistent (one snapshot of card and history)."""
    history = card["history"]
    assert history, card
    key = [(h["at"], rs.RANK[h["status"]]) for h in history]
    assert key == sorted(key, reverse=True), card  # newest first
    latest = history[0]
    assert (card["status"], card["status_at"]) == (latest["status"], latest["at"]), card
    assert (card["comment"], card["reason"]) == (latest["comment"], latest["reason"]), card
    for field, status in (
        ("picked_up_at", "PICKED_UP"),
        ("delivered_at", "DELIVERED"),
        ("returned_at", "RETURNED"),
    ):
        times = [h["at"] for h in history if h["status"] == status]
        assert card[field] == (max(times) if times else None), (field, card)
    exceptions = sum(1 for h in history if h["status"] == "DELIVERY_EXCEPTION")
    assert card["exception_count"] == exceptions, card
    assert card["user_phone"] is None or card["user_phone"].startswith("*****")


def soak(
    db_url: str,
    db: Any,
    files_per_type: int,
    requests_per_client: int,
    min_seconds: float,
    clients: int = 4,
) -> None:
    events, files, deliveries = rs.random_scenario(
        random.Random(2024), n_events=1500, n_cards=80, files_per_type=files_per_type
    )
    api = load_api_module()
    api.DB.reset_settings(None)
    server = make_server("127.0.0.1", 0, api.handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = "http://{}:{}".format(*server.server_address[:2])
    done = threading.Event()
    errors: list[str] = []
    stats = {"requests": 0, "cards_checked": 0, "not_found": 0}
    lock = threading.Lock()

    def writer() -> None:
        conn = psycopg2.connect(db_url)
        try:
            for index, key in deliveries:
                rs.ingest_bytes(conn, files[index].render(), key)
                time.sleep(0.01)
        except BaseException as exc:
            errors.append(f"writer: {exc!r}")
        finally:
            conn.close()
            done.set()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        started = time.monotonic()
        sent = 0
        try:
            while sent < requests_per_client or time.monotonic() - started < min_seconds:
                if sent >= requests_per_client and done.is_set():
                    break
                card_id = rs.Event(rng.randrange(80), 0, 0, -1, 0, 0).card_id
                kind = rng.randrange(3)
                if kind == 0:
                    url = f"{base}/cards/{card_id}"
                elif kind == 1:
                    url = f"{base}/get_card_status?card_id={card_id}"
                else:
                    url = f"{base}/cards?user_phone=0{rng.choice(rs.NATIONALS)}"
                status, body = _get(url)
                sent += 1
                if status == 404:
                    with lock:
                        stats["not_found"] += 1
                    continue
                if status != 200:
                    errors.append(f"{url}: {status} {body}")
                    continue
                cards = body.get("cards", [body])
                for card in cards:
                    check_card(card)
                with lock:
                    stats["cards_checked"] += len(cards)
        except BaseException as exc:
            errors.append(f"client {seed}: {exc!r}")
        finally:
            with lock:
                stats["requests"] += sent

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=900)
            assert not t.is_alive()
    finally:
        server.shutdown()
        server.server_close()
        api.DB.reset_settings(None)
    elapsed = time.monotonic() - started
    print(
        f"soak: {len(deliveries)} files ingested, {stats['requests']} requests "
        f"({stats['cards_checked']} cards checked, {stats['not_found']} not found yet) "
        f"in {elapsed:.1f} s, {len(errors)} errors"
    )
    assert errors == [], errors[:5]
    assert rs.db_state(db) == rs.model_state(events)
    rs.count("soak_requests", stats["requests"])
    rs.count("soak_cards_checked", stats["cards_checked"])
    rs.count("soak_files_ingested", len(deliveries))


@pytest.mark.timeout(300)
def test_serve_under_load_while_files_are_ingested(db_url: str, db: Any) -> None:
    soak(db_url, db, files_per_type=3, requests_per_client=100, min_seconds=0)


@pytest.mark.reliability
@pytest.mark.timeout(900)
def test_soak_100_files(db_url: str, db: Any) -> None:
    soak(db_url, db, files_per_type=13, requests_per_client=1500, min_seconds=60, clients=6)

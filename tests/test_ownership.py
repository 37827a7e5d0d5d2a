"""Cards belong to partners (SPEC §3 "Cards belong to partners", README "Card ownership",
issue 18 / security review r2 N1) and the copy merge rule that replaced the byte-order
tie-break, against a real PostgreSQL: another partner's row for an owned card is a rejected
row naming the owner (card, phone and outbox unchanged), in both orders of time and after
voids; a configured group or handover shares cards; every order of one group's files gives
the same state, also after a void; phone conflicts are warnings and listed for ops."""

from __future__ import annotations

import io
import itertools
import json
from typing import Any

import pytest

from cardstatus import cards, ops
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest
from cardstatus.ownership import owner_group, owner_groups, same_owner_group
from cardstatus.void import void_file

HEADER = b"Card ID,User contact,Timestamp,Comment\n"
ACME_PHONE = "+971545576586"
# acme's card: picked up on the 13th, delivered on the 14th (README example card ZYW7631)
ACME_PICKUP = HEADER + b"ZYW7631,+971545576586,2023-11-13T09:00:00Z,picked up\n"
ACME_DELIVERED = HEADER + b"ZYW7631,+971545576586,2023-11-14T12:34:56Z,left with guard\n"
# speedy's one-line files against acme's card (N1): a copy of the delivered event with its own
# phone, a newer event, and an event earlier than every event of acme's
SPEEDY_COPY = HEADER + b"ZYW7631,+1 201 555 0123,2023-11-14T12:34:56Z,\n"
SPEEDY_NEWER = HEADER + b"ZYW7631,+1 201 555 0123,2023-11-20T08:00:00Z,\n"
SPEEDY_EARLIER = HEADER + b"ZYW7631,+1 201 555 0123,2023-11-01T08:00:00Z,\n"


def ingest_as(conn: Any, partner: str, data: bytes, name: str) -> dict[str, Any]:
    source = SourceInfo(key=f"incoming/{partner}/{name}", partner=partner)
    return ingest(conn, io.BytesIO(data), source, load_settings())


def query(conn: Any, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.commit()
    return rows


def card_state(conn: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Cards (owner included) and merged events, without ids and times that depend on order."""
    cards = query(
        conn,
        "SELECT card_id, status::text, status_at, comment, reason, phone, phone_at,"
        " phone_rank::text, picked_up_at, delivered_at, returned_at, exception_count,"
        " owner_partner, first_event_at, first_event_rank::text FROM card ORDER BY card_id",
    )
    events = query(
        conn,
        "SELECT e.card_id, e.status::text, e.occurred_at, e.comment, e.reason, e.phone,"
        " e.partner, e.partner_row_id, f.object_key, e.source_line"
        " FROM card_event e JOIN ingested_file f ON f.id = e.source_file_id ORDER BY 1, 2, 3",
    )
    return cards, events


def outbox_count(conn: Any) -> int:
    return int(query(conn, "SELECT count(*) FROM status_outbox")[0][0])


def reset(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "TRUNCATE card, card_event, event_copy, status_outbox, rejected_row, ingested_file,"
            " card_tombstone, phone_conflict"
        )
    conn.commit()


def acme_card(conn: Any) -> None:
    assert ingest_as(conn, "acme", ACME_PICKUP, "Pickup.csv")["outcome"] == "applied"
    assert ingest_as(conn, "acme", ACME_DELIVERED, "Delivered.csv")["outcome"] == "applied"


def assert_rejected_naming_acme(conn: Any, report: dict[str, Any]) -> None:
    assert report["outcome"] == "rejected_file"  # its only row is rejected
    assert report["counts"]["rejected"] == 1 and report["counts"]["accepted"] == 0
    reason = report["rejects"][0]["reason"]
    assert reason.startswith("card ZYW7631 is handled by partner acme"), reason
    stored = query(
        conn, "SELECT line, reason FROM rejected_row WHERE file_id = %s", report["file_id"]
    )
    assert stored == [(2, reason)]


@pytest.mark.parametrize(
    "speedy_file",
    [SPEEDY_COPY, SPEEDY_NEWER, SPEEDY_EARLIER],
    ids=["copy-of-an-event", "newer-event", "earlier-event"],
)
def test_another_partners_row_for_an_owned_card_is_rejected_naming_the_owner(
    db: Any, speedy_file: bytes
) -> None:
    acme_card(db)
    before, outbox_before = card_state(db), outbox_count(db)
    report = ingest_as(db, "speedy", speedy_file, "repoint - Delivered.csv")
    assert_rejected_naming_acme(db, report)
    assert card_state(db) == before  # card, events, phone and owner unchanged
    assert outbox_count(db) == outbox_before  # no CardStatusChanged
    assert query(db, "SELECT phone, owner_partner FROM card") == [(ACME_PHONE, "acme")]
    assert query(db, "SELECT count(*) FROM event_copy WHERE partner = 'speedy'") == [(0,)]
    assert "2015550123" not in json.dumps(report)
    # the N1 reproduction: the real phone still finds the card, the attacker's finds nothing
    assert [c["card_id"] for c in cards.phone_cards(db, ACME_PHONE)["cards"]] == ["ZYW7631"]
    assert cards.phone_cards(db, "+12015550123")["cards"] == []


def test_in_a_mixed_file_only_the_rows_of_owned_cards_are_rejected(db: Any) -> None:
    acme_card(db)
    data = SPEEDY_NEWER + b"SPD0001,0501234567,2023-11-20T08:00:00Z,\n"
    report = ingest_as(db, "speedy", data, "mixed - Delivered.csv")
    assert report["outcome"] == "applied"
    assert report["counts"] == {
        "rows": 2,
        "accepted": 1,
        "duplicate": 0,
        "rejected": 1,
        "warnings": 0,
    }
    assert report["rejects"][0]["line"] == 2
    assert query(db, "SELECT card_id, owner_partner FROM card ORDER BY 1") == [
        ("SPD0001", "speedy"),
        ("ZYW7631", "acme"),
    ]


def test_a_card_first_reported_by_the_wrong_partner_is_resolved_by_voiding_that_file(
    db: Any,
) -> None:
    """The one order-dependent case (two partners not in one group): the first to report a card
    owns it and the other's rows are rejected naming it; voiding the wrong file and uploading the
    right one again gives exactly the state of the right files alone."""
    acme_card(db)
    acme_only = card_state(db)
    reset(db)
    wrong = ingest_as(db, "speedy", SPEEDY_COPY, "wrong - Delivered.csv")
    assert wrong["outcome"] == "applied"
    for data, name in ((ACME_PICKUP, "Pickup.csv"), (ACME_DELIVERED, "Delivered.csv")):
        report = ingest_as(db, "acme", data, name)
        assert report["outcome"] == "rejected_file"
        assert report["rejects"][0]["reason"].startswith(
            "card ZYW7631 is handled by partner speedy"
        )
    void_file(db, wrong["file_id"], "not speedy's card", "tester")
    acme_card(db)  # uploaded again
    assert card_state(db) == acme_only


def test_owner_is_the_partner_of_the_earliest_event_in_both_orders_of_its_files(db: Any) -> None:
    ingest_as(db, "acme", ACME_DELIVERED, "Delivered.csv")
    ingest_as(db, "acme", ACME_PICKUP, "Pickup.csv")
    later_first = card_state(db)
    reset(db)
    acme_card(db)
    assert card_state(db) == later_first
    assert query(db, "SELECT owner_partner, first_event_rank::text FROM card") == [
        ("acme", "PICKED_UP")
    ]


def test_after_voiding_the_owners_files_the_card_is_gone_and_another_partner_may_report_it(
    db: Any,
) -> None:
    acme_card(db)
    assert_rejected_naming_acme(db, ingest_as(db, "speedy", SPEEDY_NEWER, "x - Delivered.csv"))
    for (file_id,) in query(db, "SELECT id FROM ingested_file WHERE partner = 'acme'"):
        void_file(db, file_id, "wrong partner folder", "tester")
    assert query(db, "SELECT count(*) FROM card") == [(0,)]
    report = ingest_as(db, "speedy", SPEEDY_NEWER, "y - Delivered.csv")
    assert report["outcome"] == "applied" and report["counts"]["accepted"] == 1
    assert query(db, "SELECT owner_partner, phone FROM card") == [("speedy", "+12015550123")]
    # and now acme's rows are the foreign ones
    again = ingest_as(db, "acme", ACME_PICKUP, "Pickup again.csv")
    assert again["rejects"][0]["reason"].startswith("card ZYW7631 is handled by partner speedy")


def test_voiding_one_of_the_owners_files_keeps_the_owner_and_still_rejects_others(
    db: Any,
) -> None:
    acme_card(db)
    (pickup_id,) = query(db, "SELECT id FROM ingested_file WHERE object_key LIKE '%%Pickup.csv'")[0]
    void_file(db, pickup_id, "re-sent later", "tester")
    assert query(db, "SELECT owner_partner, first_event_rank::text FROM card") == [
        ("acme", "DELIVERED")
    ]
    state, outbox_before = card_state(db), outbox_count(db)
    for data in (SPEEDY_COPY, SPEEDY_EARLIER):
        assert_rejected_naming_acme(db, ingest_as(db, "speedy", data, "r - Delivered.csv"))
    assert card_state(db) == state and outbox_count(db) == outbox_before


GROUP_CONFIGS = {
    "handover": {"acme": {"handover_to": ["speedy"]}},
    "group": {"acme": {"group": "emirates"}, "speedy": {"group": "emirates"}},
}


@pytest.mark.parametrize("config", list(GROUP_CONFIGS), ids=list(GROUP_CONFIGS))
def test_a_grouped_partner_may_report_the_card_and_the_owners_phone_is_kept(
    db: Any, monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(GROUP_CONFIGS[config]))
    acme_card(db)
    report = ingest_as(db, "speedy", SPEEDY_COPY, "handover - Delivered.csv")
    assert report["outcome"] == "applied" and report["counts"]["rejected"] == 0
    assert report["counts"]["duplicate"] == 1
    # the copy's other phone is a warning, and the owner's copy is kept (not the smaller phone:
    # "+1201…" sorts before "+9715…")
    warning = next(w["warning"] for w in report["warnings"] if "also delivered" in w["warning"])
    assert "different phone" in warning and "already known is kept" in warning
    assert query(db, "SELECT phone, partner FROM card_event WHERE status = 'DELIVERED'") == [
        (ACME_PHONE, "acme")
    ]
    assert query(db, "SELECT phone, owner_partner FROM card") == [(ACME_PHONE, "acme")]
    listed = ops.phone_conflicts(db)["conflicts"]
    assert [(c["partner"], c["other_partner"], c["owner_partner"], c["kept"]) for c in listed] == [
        ("speedy", "acme", "acme", False)
    ]
    assert "2015550123" not in json.dumps(listed) and "545576586" not in json.dumps(listed)
    # a newer event of the grouped partner is applied: status and phone change, with a warning
    newer = ingest_as(db, "speedy", SPEEDY_NEWER, "handover newer - Delivered.csv")
    assert newer["counts"]["accepted"] == 1
    assert any("phone changed" in w["warning"] for w in newer["warnings"])
    assert query(db, "SELECT phone, owner_partner FROM card") == [("+12015550123", "acme")]


def test_phone_conflicts_of_a_voided_file_are_no_longer_listed(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(GROUP_CONFIGS["handover"]))
    acme_card(db)
    report = ingest_as(db, "speedy", SPEEDY_COPY, "handover - Delivered.csv")
    assert len(ops.phone_conflicts(db)["conflicts"]) == 1
    void_file(db, report["file_id"], "wrong phone", "tester")
    assert ops.phone_conflicts(db)["conflicts"] == []


def test_phone_conflicts_page_with_a_cursor(db: Any) -> None:
    lines = b"".join(f"PC{i:03d},0501111111,2023-11-14T12:00:00Z,\n".encode() for i in range(3))
    other = lines.replace(b"0501111111", b"0502222222")
    ingest_as(db, "acme", HEADER + lines, "a - Delivered.csv")
    ingest_as(db, "acme", HEADER + other, "b - Delivered.csv")
    first = ops.phone_conflicts(db, limit=2)
    assert len(first["conflicts"]) == 2 and first["next_cursor"]
    rest = ops.phone_conflicts(db, cursor=first["next_cursor"], limit=2)
    assert len(rest["conflicts"]) == 1 and rest["next_cursor"] is None
    cards = {c["card_id"] for c in first["conflicts"] + rest["conflicts"]}
    assert cards == {"PC000", "PC001", "PC002"}


def test_the_owner_changing_the_phone_with_a_newer_event_is_a_warning(db: Any) -> None:
    acme_card(db)
    newer = HEADER + b"ZYW7631,0501234567,2023-11-15T10:00:00Z,returned to branch\n"
    report = ingest_as(db, "acme", newer, "Returned.csv")
    assert report["counts"]["accepted"] == 1
    warnings = [w for w in report["warnings"] if "phone changed" in w["warning"]]
    assert warnings == [
        {
            "line": 2,
            "warning": "card ZYW7631: phone changed from one ending 6586 to one ending 4567",
        }
    ]
    assert query(db, "SELECT phone FROM card") == [("+971501234567",)]


# -- order independence over one group's files, and after voids ---------------------------------

# Three partners of one group report cards with conflicting phones and comments. G1: the
# earliest event is acme-returns' (so it owns the card), the others bring copies of its events.
# G3: acme's pickup is the earliest, but its file carries no copy of the delivered event; when
# acme's file comes last, the owner moves from acme-returns to acme and the delivered event
# must be merged again (acme-night's copy now ranks first).
GROUP = {
    "acme": {"group": "acme-group"},
    "acme-returns": {"group": "acme-group"},
    "acme-night": {"handover_to": ["acme"]},
}
GROUP_FILES = {
    ("acme", "a - mixed.csv"): (
        b"Card ID,User contact,Timestamp,Status,Comment\n"
        b"G1,0501111111,2024-02-01T10:00:00Z,Picked up,zeta\n"
        b"G1,0501111111,2024-02-02T10:00:00Z,Delivered,at door\n"
        b"G2,,2024-02-03T10:00:00Z,Picked up,\n"
        b"G3,0505555555,2024-02-04T10:00:00Z,Picked up,\n"
    ),
    ("acme-returns", "r - mixed.csv"): (
        b"Card ID,User contact,Timestamp,Status,Comment\n"
        b"G1,0509999999,2024-01-31T10:00:00Z,Picked up,early\n"
        b"G1,0502222222,2024-02-02T10:00:00Z,Delivered,alpha\n"
        b"G2,0503333333,2024-02-03T10:00:00Z,Picked up,with guard\n"
        b"G3,0506666666,2024-02-05T10:00:00Z,Picked up,\n"
        b"G3,0507777777,2024-02-06T10:00:00Z,Delivered,returns copy\n"
    ),
    ("acme-night", "n - mixed.csv"): (
        b"Card ID,User contact,Timestamp,Status,Comment\n"
        b"G2,0504444444,2024-02-03T10:00:00Z,Picked up,aaa\n"
        b"G2,0504444444,2024-02-04T10:00:00Z,Delivered,\n"
        b"G3,0508888888,2024-02-06T10:00:00Z,Delivered,night copy\n"
    ),
}


def _apply(db: Any, files: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    ids = {}
    for partner, name in files:
        report = ingest_as(db, partner, GROUP_FILES[(partner, name)], name)
        assert report["outcome"] == "applied", report
        assert report["counts"]["rejected"] == 0
        ids[(partner, name)] = report["file_id"]
    return ids


def test_every_order_of_one_groups_files_gives_the_same_state_also_after_a_void(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(GROUP))
    names = list(GROUP_FILES)
    states = set()
    for order in itertools.permutations(names):
        reset(db)
        _apply(db, list(order))
        states.add(repr(card_state(db)))
    assert len(states) == 1
    owners = query(db, "SELECT card_id, owner_partner FROM card ORDER BY 1")
    assert owners == [("G1", "acme-returns"), ("G2", "acme"), ("G3", "acme")]
    assert query(db, "SELECT phone, comment FROM card WHERE card_id = 'G3'") == [
        ("+971508888888", "night copy")
    ]
    # G1's delivered event: acme-returns owns the card, so its copy (phone and comment) is kept,
    # although acme's comment and phone would win by byte order
    assert query(
        db,
        "SELECT phone, comment, partner FROM card_event WHERE card_id = 'G1'"
        " AND status = 'DELIVERED'",
    ) == [("+971502222222", "alpha", "acme-returns")]

    # Voiding any one file gives the state of the other files applied alone, in any order
    # (the owner moves to the partner of the earliest event left: G1 to acme after voiding
    # acme-returns' file, and its events are merged again with acme's copies first).
    for voided in names:
        rest = [n for n in names if n != voided]
        expected = set()
        for order in itertools.permutations(rest):
            reset(db)
            _apply(db, list(order))
            expected.add(repr(card_state(db)))
        assert len(expected) == 1
        for order in itertools.permutations(names):
            reset(db)
            ids = _apply(db, list(order))
            void_file(db, ids[voided], "test", "tester")
            assert repr(card_state(db)) in expected, (voided, order)


# -- configuration ------------------------------------------------------------------------------


def test_groups_are_the_connected_partners_of_group_names_and_handovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "PARTNER_CONFIG",
        json.dumps(
            {
                "acme": {"handover_to": ["speedy"]},
                "speedy": {"group": "g"},
                "fast": {"group": "g"},
                "alone": {"timezone": "UTC"},
            }
        ),
    )
    cfg = load_settings()
    assert owner_group("acme", cfg) == {"acme", "speedy", "fast"}
    assert same_owner_group("fast", "acme", cfg) and same_owner_group("speedy", "acme", cfg)
    assert not same_owner_group("alone", "acme", cfg)
    assert owner_group("unconfigured", cfg) == {"unconfigured"}
    assert owner_groups(cfg)["alone"] == {"alone"}


@pytest.mark.parametrize(
    "config",
    [{"acme": {"group": ""}}, {"acme": {"group": 3}}, {"acme": {"handover_to": "speedy"}}],
)
def test_bad_group_settings_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]
) -> None:
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(config))
    with pytest.raises(ValueError, match="PARTNER_CONFIG"):
        load_settings()


def test_group_settings_do_not_change_a_files_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    from cardstatus.ingest.identity import partner_fingerprint

    monkeypatch.setenv("PARTNER_CONFIG", json.dumps({"acme": {"timezone": "UTC"}}))
    plain = partner_fingerprint(load_settings().partner("acme"))
    monkeypatch.setenv(
        "PARTNER_CONFIG", json.dumps({"acme": {"timezone": "UTC", "handover_to": ["b"]}})
    )
    assert partner_fingerprint(load_settings().partner("acme")) == plain


def test_a_card_the_previous_release_created_during_a_deploy_gets_its_owner_from_its_copies(
    db: Any,
) -> None:
    """Migration 0010 backfills owners; a card the previous release creates while the deploy
    runs has none. Its owner is then the partner of its earliest copy: another partner's rows
    are still rejected, and the owner's next file writes the owner down."""
    acme_card(db)
    with db.cursor() as cur:  # as the previous release leaves it
        cur.execute(
            "UPDATE card SET owner_partner = NULL, first_event_at = NULL, first_event_rank = NULL"
        )
    db.commit()
    assert_rejected_naming_acme(db, ingest_as(db, "speedy", SPEEDY_EARLIER, "e - Delivered.csv"))
    newer = HEADER + b"ZYW7631,+971545576586,2023-11-15T10:00:00Z,\n"
    assert ingest_as(db, "acme", newer, "Returned.csv")["counts"]["accepted"] == 1
    assert query(db, "SELECT owner_partner, first_event_at, first_event_rank::text FROM card") == [
        ("acme", query(db, "SELECT min(occurred_at) FROM event_copy")[0][0], "PICKED_UP")
    ]

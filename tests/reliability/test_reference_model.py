"""(1) Property: random events for random cards, split into random messy files of the four types
(and files with a Status column), duplicated rows, the same file delivered twice and under two
keys, in random order → the database equals the pure-Python reference model of the status
rules (README "Domain rules")."""

from __future__ import annotations

from typing import Any

import pytest
import rel_support as rs
from hypothesis import given, settings
from hypothesis import strategies as st
from rel_support import Event, PartnerFile, Row, Style


@st.composite
def styles(draw: Any) -> Style:
    return Style(
        encoding=draw(st.integers(0, len(rs.ENCODINGS) - 1)),
        newline=draw(st.integers(0, len(rs.NEWLINES) - 1)),
        delimiter=draw(st.integers(0, len(rs.DELIMITERS) - 1)),
        final_newline=draw(st.booleans()),
        header_variant=draw(st.integers(0, 4)),
        column_order=tuple(draw(st.permutations(range(6)))),
        with_phone=draw(st.booleans()),
        with_comment=draw(st.booleans()),
        with_id=draw(st.booleans()),
        with_extra=draw(st.booleans()),
        blank_lines=draw(st.booleans()),
        quote_all=draw(st.booleans()),
        ts_format=draw(st.integers(0, len(rs.TS_FORMATS) - 1)),
        card_quirk=draw(st.integers(0, 2)),
    )


events_strategy = st.lists(
    st.builds(
        Event,
        card=st.integers(0, len(rs.CARD_IDS) - 1),
        status=st.integers(0, 3),
        time=st.integers(0, len(rs.TIMES) - 1),
        phone=st.integers(-2, len(rs.NATIONALS) - 1),
        comment=st.integers(0, len(rs.COMMENTS) - 1),
        partner=st.integers(0, len(rs.PARTNERS) - 1),
    ),
    min_size=1,
    max_size=20,
    unique_by=lambda e: e.key,
)


@st.composite
def scenarios(draw: Any) -> tuple[list[Event], list[PartnerFile], list[tuple[int, str]]]:
    """Events, the files carrying them, and the deliveries (file index, key) in order."""
    events = draw(events_strategy)
    # Whether a partner's files have a phone / comment column is per partner: an event repeated
    # in a file without the column would be a *different* copy of it (see
    # test_copies_of_one_event_that_differ_in_phone_are_order_dependent below).
    columns = [(draw(st.booleans()), draw(st.booleans())) for _ in rs.PARTNERS]
    events = [
        Event(
            e.card,
            e.status,
            e.time,
            e.phone if columns[e.partner][0] else -1,
            e.comment if columns[e.partner][1] else 0,
            e.partner,
        )
        for e in events
    ]
    # Each partner has up to 3 files per event type plus one file with a Status column.
    slots: dict[tuple[int, str | None, int], list[Row]] = {}
    for ev in events:
        placements = draw(st.integers(1, 3))  # >1: the event is repeated (same or other file)
        for _ in range(placements):
            mixed = draw(st.integers(0, 5)) == 0
            slot = (ev.partner, None if mixed else ev.status_name, draw(st.integers(0, 2)))
            slots.setdefault(slot, []).append(
                Row(
                    ev,
                    phone_form=draw(st.integers(0, 9)),
                    ts_format=draw(st.one_of(st.none(), st.integers(0, len(rs.TS_FORMATS) - 1))),
                    status_word=draw(st.integers(0, 2)),
                )
            )
    files: list[PartnerFile] = []
    for (partner, status, n), rows in sorted(slots.items(), key=str):
        rows = draw(st.permutations(rows))
        if draw(st.integers(0, 4)) == 0:
            rows = [*rows, Row(None)]  # one broken row: rejected with its line
        style = draw(styles())
        style = Style(
            **{
                **style.__dict__,
                "with_phone": columns[partner][0],
                "with_comment": columns[partner][1],
            }
        )
        word = "export" if status is None else draw(st.sampled_from(rs.FILE_TYPE_WORDS[status]))
        name = f"{rs.PARTNERS[partner]} Card Status Info - {word} ({n}).csv"
        f = PartnerFile(partner, name, style, list(rows), status_column=status is None)
        if not rs.encodable(f):
            f.style = Style(**{**f.style.__dict__, "encoding": 0})
        files.append(f)
    deliveries: list[tuple[int, str]] = []
    for i, f in enumerate(files):
        key = f"incoming/{rs.PARTNERS[f.partner]}/{f.name}"
        deliveries.append((i, key))
        if draw(st.integers(0, 3)) == 0:
            deliveries.append((i, key))  # at-least-once: the same object again
        if draw(st.integers(0, 3)) == 0:
            deliveries.append((i, key.replace(".csv", " copy.csv")))  # same bytes, other key
    return events, files, draw(st.permutations(deliveries))


def check_scenario(
    db: Any, events: list[Event], files: list[PartnerFile], deliveries: list[tuple[int, str]]
) -> None:
    rs.reset(db)
    applied: dict[str, str] = {}  # sha256 → key it was applied under
    accepted = 0
    for index, key in deliveries:
        data = files[index].render()
        report = rs.ingest_bytes(db, data, key)
        rs.assert_report_accounts_for_every_row(report)
        digest = rs.hashlib.sha256(data).hexdigest()
        if digest not in applied:
            assert report["outcome"] == "applied", report
            applied[digest] = key
            accepted += report["counts"]["accepted"]
            broken = sum(1 for r in files[index].rows if r.event is None)
            assert report["counts"]["rejected"] == broken, report
            if broken:
                assert len(report["rejects"]) == broken
        elif applied[digest] == key:
            assert report["outcome"] == "applied", report  # the original report, unchanged
        else:
            assert report["outcome"] == "duplicate_file", report
    model_cards, model_history = rs.model_state(events)
    db_cards, db_history = rs.db_state(db)
    assert db_history == model_history
    assert db_cards == model_cards
    assert accepted == len(model_history)
    rs.count("model_examples")
    rs.count("model_events", len(model_history))
    rs.count("model_deliveries", len(deliveries))


@settings(settings.get_profile("reliability-default"))
@given(scenario=scenarios())
def test_database_equals_reference_model(db: Any, scenario: Any) -> None:
    check_scenario(db, *scenario)


@pytest.mark.reliability
@settings(settings.get_profile("reliability-long"))
@given(scenario=scenarios())
def test_database_equals_reference_model_long(db: Any, scenario: Any) -> None:
    check_scenario(db, *scenario)


def test_every_formatting_quirk_renders_and_parses(db: Any) -> None:
    """Each quirk on its own, so a failure names it (the property mixes them)."""
    events = [
        Event(card=c, status=s, time=(c + s) % len(rs.TIMES), phone=c % 5, comment=s * 2, partner=0)
        for c in range(len(rs.CARD_IDS))
        for s in range(4)
    ]
    variants: list[Style] = [Style()]
    variants += [Style(encoding=i) for i in range(len(rs.ENCODINGS))]
    variants += [Style(newline=i, final_newline=False) for i in range(len(rs.NEWLINES))]
    variants += [Style(delimiter=i, quote_all=True) for i in range(len(rs.DELIMITERS))]
    variants += [Style(ts_format=i) for i in range(len(rs.TS_FORMATS))]
    variants += [Style(header_variant=i, card_quirk=i % 3, with_id=True) for i in range(5)]
    variants += [Style(with_extra=True, blank_lines=True, column_order=(5, 4, 3, 2, 1, 0))]
    for i, style in enumerate(variants):
        rows = [Row(ev, phone_form=j) for j, ev in enumerate(events)]
        by_status: dict[str, list[Row]] = {}
        for row in rows:
            assert row.event is not None
            by_status.setdefault(row.event.status_name, []).append(row)
        files = [
            PartnerFile(0, f"acme {i} - {rs.FILE_TYPE_WORDS[s][i % 3]}.csv", style, r)
            for s, r in by_status.items()
        ]
        check_scenario(
            db, events, files, [(j, f"incoming/acme/{f.name}") for j, f in enumerate(files)]
        )


# --- shrunk counterexamples, kept as fixed regression tests -----------------------------------


# --- conflicting copies: any order of files gives the same state (README "Merge rule") -----

_CONFLICT_PHONES = ("", "0501111111", "0502222222", "971503333333")
_CONFLICT_COMMENTS = ("", "left at door", "User not available", "Refused", "zz")
_CONFLICT_TIMES = ("2024-01-01T10:00:00Z", "2024-01-01T12:00:00Z", "2024-01-02T09:30:00Z")
_CONFLICT_WORDS = ("Pickup", "Delivery exceptions", "Delivered", "Returned")


@st.composite
def conflicting_files(draw: Any) -> tuple[list[tuple[str, str, bytes]], list[int], list[int]]:
    """Files (partner, key, bytes) that carry the same events with different fields, and two
    random orders of them."""
    files = []
    for i in range(draw(st.integers(2, 4))):
        rows = draw(
            st.lists(
                st.tuples(
                    st.integers(0, 3),  # card
                    st.integers(0, len(_CONFLICT_TIMES) - 1),
                    st.integers(0, len(_CONFLICT_PHONES) - 1),
                    st.integers(0, len(_CONFLICT_COMMENTS) - 1),
                    st.integers(0, 2),  # partner row id
                ),
                min_size=1,
                max_size=8,
            )
        )
        lines = ["ID,Card ID,Timestamp,Phone,Comment"]
        lines += [
            f"r{rid},CC{card},{_CONFLICT_TIMES[t]},{_CONFLICT_PHONES[p]},{_CONFLICT_COMMENTS[c]}"
            for card, t, p, c, rid in rows
        ]
        word = draw(st.sampled_from(_CONFLICT_WORDS))
        partner = draw(st.sampled_from(("acme", "zeta")))
        data = ("\r\n".join(lines) + "\r\n").encode()
        files.append((partner, f"incoming/{partner}/f{i} - {word}.csv", data))
    n = len(files)
    return files, draw(st.permutations(range(n))), draw(st.permutations(range(n)))


def _full_state(db: Any) -> tuple[Any, ...]:
    cards, history = rs.db_state(db)
    with db.cursor() as cur:
        cur.execute(
            "SELECT e.card_id, e.status::text, e.occurred_at, e.partner_row_id, f.object_key,"
            " e.source_line FROM card_event e JOIN ingested_file f ON f.id = e.source_file_id"
            " ORDER BY 1, 2, 3"
        )
        sources = cur.fetchall()
        cur.execute(
            "SELECT f.object_key, c.card_id, c.status::text, c.occurred_at, c.line, c.phone_hash,"
            " c.phone_key, c.phone_last4,"
            " c.comment, c.reason, c.partner_row_id, c.partner FROM event_copy c"
            " JOIN ingested_file f ON f.id = c.file_id ORDER BY 1, 2, 3, 4"
        )
        copies = cur.fetchall()
        cur.execute("SELECT card_id, phone_at, phone_rank::text FROM card ORDER BY card_id")
        phone_events = cur.fetchall()
    db.commit()
    return cards, history, sources, copies, phone_events


def _check_outbox(db: Any) -> None:
    """Versions strictly increase per card; the last event of a card is its current status."""
    with db.cursor() as cur:
        cur.execute("SELECT card_id, card_version, detail FROM status_outbox ORDER BY id")
        rows = cur.fetchall()
        cur.execute("SELECT card_id, status::text, version FROM card")
        current = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
    db.commit()
    last: dict[str, tuple[int, str]] = {}
    for card_id, version, detail in rows:
        assert version > last.get(card_id, (0, ""))[0]
        last[card_id] = (version, detail["status"])
    assert {c: (s, v) for c, (v, s) in last.items()} == current


@settings(settings.get_profile("reliability-default"))
@given(scenario=conflicting_files())
def test_conflicting_copies_in_any_order_give_identical_state(db: Any, scenario: Any) -> None:
    files, first_order, second_order = scenario
    states = []
    for order in (first_order, second_order):
        rs.reset(db)
        for i in order:
            partner, key, data = files[i]
            report = rs.ingest_bytes(db, data, key, partner=partner)
            rs.assert_report_accounts_for_every_row(report)
        _check_outbox(db)
        states.append(_full_state(db))
    assert states[0] == states[1]

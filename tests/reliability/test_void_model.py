"""Voiding a file, as a property (hypothesis, real PostgreSQL): for random sets S of small files
(overlapping and conflicting copies of events, several cards, all four statuses, phones,
comments and partner row ids differing, files with a Status column) and any F in S:

- apply S, then void F  ≡  apply S - {F}  (every API card object byte for byte, the projection,
  every merged event with its source, every copy);
- then apply F again   ≡  apply S;
- voiding F twice answers the same result and changes nothing;
- the void writes one outbox row per card whose current event changed (previous_status is the
  status before, card_version = version before + 1), and over the whole run every card's
  card_version strictly increases (also across a card deleted by the void and sighted again).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import rel_support as rs
import void_support as vs
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rel_support import Event

VOID_EXAMPLES = int(os.environ.get("VOID_EXAMPLES", "25"))


@st.composite
def void_scenarios(draw: Any) -> tuple[list[vs.VoidFile], int]:
    n_files = draw(st.integers(2, 5))
    files: list[vs.VoidFile] = []
    for i in range(n_files):
        partner = draw(st.integers(0, len(rs.PARTNERS) - 1))
        status = None if draw(st.integers(0, 4)) == 0 else draw(st.integers(0, 3))
        events = draw(
            st.lists(
                st.builds(
                    Event,
                    card=st.integers(0, vs.N_CARDS - 1),
                    status=st.just(status) if status is not None else st.integers(0, 3),
                    time=st.integers(0, vs.N_TIMES - 1),
                    phone=st.sampled_from(vs.PHONES),
                    comment=st.sampled_from(vs.COMMENTS),
                    partner=st.just(partner),
                ),
                min_size=1,
                max_size=6,
            )
        )
        files.append(vs.make_file(i, partner, status, events))
    # Two files with the same bytes and meaning would be one file (the second a duplicate).
    assume(len({(f.render(), f.file.partner, f.key.split(" - ")[1]) for f in files}) == n_files)
    order = draw(st.permutations(range(n_files)))
    return [files[i] for i in order], draw(st.integers(0, n_files - 1))


def check_void(db: Any, files: list[vs.VoidFile], victim: int) -> None:
    target = files[victim]
    vs.reset(db)
    ids = vs.apply_all(db, files)
    whole = vs.state(db)
    before = vs.versions(db)
    mark = vs.last_outbox_id(db)

    result = vs.void(db, ids[target.key])
    voided = vs.state(db)
    rows = vs.outbox(db, mark)
    vs.assert_void_outbox(db, before, vs.versions(db), rows, ids[target.key])
    assert result.status_changes == len(rows)
    assert result.copies_removed == len({(r.event.key) for r in target.file.rows if r.event})

    # Idempotent: the same answer (even with another reason/actor), nothing changes.
    mark = vs.last_outbox_id(db)
    again = vs.void(db, ids[target.key], reason="again", actor="somebody else")
    assert again.to_json() == result.to_json() and again.already_voided
    assert vs.state(db) == voided
    assert vs.last_outbox_id(db) == mark

    # The voided bytes can be applied again: the state of S.
    vs.ingest(db, target)
    assert vs.state(db) == whole
    vs.assert_versions_strictly_increase(db)

    # The reference: S without F, in the same order.
    vs.reset(db)
    vs.apply_all(db, [f for f in files if f is not target])
    assert vs.state(db) == voided
    rs.count("void_examples")
    rs.count("void_cards_deleted", result.cards_deleted)
    rs.count("void_status_changes", result.status_changes)
    rs.count("void_events_remerged", result.events_remerged)


@settings(settings.get_profile("reliability-default"), max_examples=VOID_EXAMPLES)
@given(scenario=void_scenarios())
def test_void_equals_never_applied(db: Any, scenario: Any) -> None:
    check_void(db, *scenario)


@pytest.mark.reliability
@settings(settings.get_profile("reliability-long"))
@given(scenario=void_scenarios())
def test_void_equals_never_applied_long(db: Any, scenario: Any) -> None:
    check_void(db, *scenario)


# --- fixed cases (each shape on its own, so a failure names it) --------------------------------


def _ev(card: int, status: int, time: int, phone: int = -1, comment: int = 0, partner: int = 0):  # type: ignore[no-untyped-def]
    return Event(card, status, time, phone, comment, partner)


def test_conflicting_copies_are_merged_again_without_the_voided_one(db: Any) -> None:
    """The voided file's copy held the winning (first-ranked) phone and comment: the event keeps
    the other file's values, and the card's phone and comment follow."""
    dx = 1  # DELIVERY_EXCEPTION
    files = [
        vs.make_file(0, 0, dx, [_ev(0, dx, 2, phone=0, comment=1)]),
        vs.make_file(1, 1, dx, [_ev(0, dx, 2, phone=2, comment=3, partner=1)]),
    ]
    check_void(db, files, 0)
    check_void(db, files, 1)


def test_a_card_only_the_voided_file_knew_disappears_and_comes_back(db: Any) -> None:
    files = [
        vs.make_file(0, 0, 3, [_ev(1, 3, 4, phone=1)]),  # RETURNED, only card 1
        vs.make_file(1, 0, 0, [_ev(0, 0, 1, phone=0)]),  # PICKED_UP of card 0
    ]
    check_void(db, files, 0)


def test_a_file_repeating_one_event_with_different_fields(db: Any) -> None:
    files = [
        vs.make_file(0, 0, 2, [_ev(0, 2, 3, phone=0, comment=2), _ev(0, 2, 3, phone=1)]),
        vs.make_file(1, 0, 2, [_ev(0, 2, 3, phone=2, comment=1), _ev(1, 2, 0)]),
    ]
    for victim in (0, 1):
        check_void(db, files, victim)

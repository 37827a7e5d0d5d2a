"""Read side of the domain: a card's current status and history, by card id or by phone.

Plain functions over a psycopg2 connection; the API handler and the CLI both call
`find_card_status`. Inputs are validated here (the same card-id rule as ingestion, phones
through `cardstatus.normalise`), so every caller gets the same answers and errors.
A `Card` never holds a full phone number (nor does the database: README "Privacy"): a phone is
looked up by its keyed hashes, and shown as its last 4 digits behind 8 stars.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg2.extensions
from psycopg2.extensions import connection as Connection

from cardstatus.config import DEFAULT_PHONE_REGION
from cardstatus.errors import CardNotFound, InvalidParameter, MissingParameter
from cardstatus.model import CARD_ID_RE, redact_phones
from cardstatus.phonehash import lookup_hashes, mask_last4
from cardstatus.sql import cards as sql

# The card-id rule of ingestion (README "Domain rules"; fullmatch: no trailing newline slips by).
CARD_ID_MAX_LENGTH = 64
# Longest raw phone we try to parse ('+971 (58) 594-9014' style input is well under this).
PHONE_MAX_LENGTH = 40
# What a malformed card id gets told (the API's validation layer says the same).
CARD_ID_MESSAGE = (
    "card_id must be 1-64 characters: ASCII letters, digits, '_' or '-', "
    "starting with a letter or digit"
)
# One phone may have several cards; answers list at most this many (latest first) and say
# `truncated: true` when there are more.
MAX_CARDS_PER_PHONE = 100


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    status: str
    at: datetime
    comment: str | None
    reason: str | None
    partner: str
    file_id: int | None = None  # the file (and line) the event came from (its source copy)
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Card:
    card_id: str
    status: str
    status_at: datetime
    comment: str | None
    reason: str | None
    user_phone: str | None  # masked: only the last 4 digits survive
    picked_up_at: datetime | None
    delivered_at: datetime | None
    returned_at: datetime | None
    exception_count: int
    history: tuple[HistoryEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        """The card object of the API (README "API"; JSON-ready: times as ISO 8601 UTC with Z)."""
        return {
            "card_id": self.card_id,
            "status": self.status,
            "status_at": iso_utc(self.status_at),
            "comment": self.comment,
            "reason": self.reason,
            "user_phone": self.user_phone,
            "picked_up_at": iso_utc(self.picked_up_at),
            "delivered_at": iso_utc(self.delivered_at),
            "returned_at": iso_utc(self.returned_at),
            "exception_count": self.exception_count,
            "history": [
                {
                    "status": h.status,
                    "at": iso_utc(h.at),
                    "comment": h.comment,
                    "reason": h.reason,
                    "partner": h.partner,
                    "file_id": h.file_id,
                    "line": h.line,
                }
                for h in self.history
            ],
        }

    def summary(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id,
            "status": self.status,
            "status_at": iso_utc(self.status_at),
        }


def iso_utc(value: datetime | None) -> str | None:
    """'2023-11-13T09:34:56Z' (fractional seconds only when present)."""
    if value is None:
        return None
    if value.tzinfo is None:  # timestamptz always carries an offset; be safe anyway
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():  # per answer and history entry: skip the conversion when UTC
        value = value.astimezone(UTC)
    # isoformat() of an aware time at offset 0: '...:56+00:00', '.123456' only when non-zero.
    return value.isoformat()[:-6] + "Z"


# --- input validation -------------------------------------------------------------------


def validate_card_id(raw: str | None) -> str:
    """The card id as ingestion stores it (upper-case), else InvalidParameter('card_id')."""
    if raw is None or raw == "":
        raise MissingParameter("card_id is required", parameter="card_id")
    if len(raw) > CARD_ID_MAX_LENGTH or CARD_ID_RE.fullmatch(raw) is None:
        raise InvalidParameter(CARD_ID_MESSAGE, parameter="card_id")
    return raw.upper()  # ingestion stores card ids upper-case


def parse_phone(raw: str | None, region: str = DEFAULT_PHONE_REGION) -> str:
    """E.164 form of a phone in any accepted form (README "Partner files and reports"), else
    InvalidParameter(parameter='user_phone')."""
    if raw is None or raw.strip() == "":
        raise MissingParameter("user_phone is required", parameter="user_phone")
    invalid = InvalidParameter(
        "user_phone is not a valid phone number (national digits, or with the country code)",
        parameter="user_phone",
    )
    if len(raw) > PHONE_MAX_LENGTH or any(not ch.isprintable() for ch in raw):
        raise invalid
    # Imported on first use: lookups by card id never pay for the phone metadata.
    from cardstatus.normalise import normalise_phone

    try:
        phone = normalise_phone(raw, region)
    except ValueError:
        raise invalid from None
    if not phone.e164:
        raise invalid
    return phone.e164


def redact_comment(comment: str | None) -> str | None:
    """A partner's free-text comment as answers show it: phone-like digit runs masked."""
    return redact_phones(comment) if comment else comment


# --- lookups ----------------------------------------------------------------------------


def _card_from_row(row: tuple[Any, ...]) -> Card:
    (
        card_id,
        status,
        status_at,
        comment,
        reason,
        phone_last4,
        picked_up_at,
        delivered_at,
        returned_at,
        exception_count,
        h_statuses,
        h_ats,
        h_comments,
        h_reasons,
        h_partners,
        h_file_ids,
        h_lines,
    ) = row
    history = tuple(
        HistoryEntry(
            status=s, at=a, comment=redact_comment(c), reason=r, partner=p, file_id=f, line=n
        )
        for s, a, c, r, p, f, n in zip(
            h_statuses or (),
            h_ats or (),
            h_comments or (),
            h_reasons or (),
            h_partners or (),
            h_file_ids or (),
            h_lines or (),
            strict=True,
        )
    )
    return Card(
        card_id=card_id,
        status=status,
        status_at=status_at,
        comment=redact_comment(comment),
        reason=reason,
        user_phone=mask_last4(phone_last4),
        picked_up_at=picked_up_at,
        delivered_at=delivered_at,
        returned_at=returned_at,
        exception_count=exception_count,
        history=history,
    )


def run_query(conn: Connection, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one read-only statement.

    The API connection is in autocommit mode (no BEGIN/ROLLBACK round trips, nothing left
    open between invocations). On a transactional connection, a transaction this call
    started is ended here; a caller's own open transaction is left alone.
    """
    started_here = (
        not conn.autocommit
        and conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    )
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()
    finally:
        if started_here and not conn.closed:
            conn.rollback()


def _fetch_cards(conn: Connection, query: str, params: dict[str, Any]) -> list[Card]:
    return [_card_from_row(row) for row in run_query(conn, query, params)]


def get_card(conn: Connection, card_id: str) -> Card | None:
    """The card with this (already validated) id, with its history; None when unknown."""
    cards = _fetch_cards(conn, sql.CARD_BY_ID, {"card_id": card_id})
    return cards[0] if cards else None


def get_card_for_phone(conn: Connection, card_id: str, e164: str) -> Card | None:
    """The card only when its current phone is e164."""
    cards = _fetch_cards(
        conn, sql.CARD_BY_ID_AND_PHONE, {"card_id": card_id, "phone_hashes": lookup_hashes(e164)}
    )
    return cards[0] if cards else None


def cards_for_phone(
    conn: Connection, e164: str, limit: int = MAX_CARDS_PER_PHONE
) -> tuple[list[Card], bool]:
    """Cards whose current phone is e164, latest status first: at most `limit`, and whether
    there are more."""
    found = _fetch_cards(
        conn, sql.CARDS_BY_PHONE, {"phone_hashes": lookup_hashes(e164), "limit": limit + 1}
    )
    return found[:limit], len(found) > limit


def other_card_summaries(
    conn: Connection, e164: str, exclude_card_id: str, limit: int = MAX_CARDS_PER_PHONE - 1
) -> tuple[list[dict[str, Any]], bool]:
    """The phone's other cards (id, status, time), latest first: at most `limit`, and whether
    there are more."""
    rows = run_query(
        conn,
        sql.CARD_SUMMARIES_BY_PHONE,
        {
            "phone_hashes": lookup_hashes(e164),
            "exclude_card_id": exclude_card_id,
            "limit": limit + 1,
        },
    )
    summaries = [
        {"card_id": card_id, "status": status, "status_at": iso_utc(status_at)}
        for card_id, status, status_at in rows[:limit]
    ]
    return summaries, len(rows) > limit


def ping(conn: Connection) -> None:
    """Raises psycopg2 errors when the database does not answer."""
    run_query(conn, sql.PING, {})


# --- use cases --------------------------------------------------------------------------


def status_query(
    card_id: str | None, user_phone: str | None, region: str = DEFAULT_PHONE_REGION
) -> tuple[str | None, str | None]:
    """Validated (card_id, E.164 phone) of a status request; at least one is set."""
    has_card = card_id is not None and card_id != ""
    has_phone = user_phone is not None and user_phone.strip() != ""
    if not has_card and not has_phone:
        raise MissingParameter("card_id or user_phone is required", parameter="card_id")
    valid_id = validate_card_id(card_id) if has_card else None
    e164 = parse_phone(user_phone, region) if has_phone else None
    return valid_id, e164


def card_status(
    conn: Connection,
    card_id: str | None,
    e164: str | None,
    *,
    count_pair_lookup: Callable[[bool], None] | None = None,
) -> dict[str, Any]:
    """The get_card_status body for already validated inputs (see `status_query`).

    count_pair_lookup(mismatch): called once for a card-id + phone lookup, match or not,
    before answering (the API's per-caller budget, cardstatus/lookup_budget.py: it raises
    TooManyMismatches when the caller's budget is spent)."""
    if e164 is None:
        if card_id is None:
            raise MissingParameter("card_id or user_phone is required", parameter="card_id")
        card = get_card(conn, card_id)
        if card is None:
            raise CardNotFound()
        return {**card.to_dict(), "other_cards": [], "truncated": False}

    if card_id is not None:
        return _card_of_phone_status(conn, card_id, e164, count_pair_lookup)

    # One statement: the latest card with its history, the others as id/status/time.
    rows = run_query(
        conn,
        sql.LATEST_CARD_BY_PHONE,
        {"phone_hashes": lookup_hashes(e164), "limit": MAX_CARDS_PER_PHONE + 1},
    )
    if not rows:
        raise CardNotFound()
    found = rows[:MAX_CARDS_PER_PHONE]
    return {
        **_card_from_row(found[0]).to_dict(),
        "other_cards": [
            {"card_id": r[0], "status": r[1], "status_at": iso_utc(r[2])} for r in found[1:]
        ],
        "truncated": len(rows) > MAX_CARDS_PER_PHONE,
    }


def _card_of_phone_status(
    conn: Connection,
    card_id: str,
    e164: str,
    count_pair_lookup: Callable[[bool], None] | None,
) -> dict[str, Any]:
    """card_status with both a card id and a phone: the card if it is that phone's, with the
    phone's other cards, in one statement (see card_status for count_pair_lookup)."""
    rows = run_query(
        conn,
        sql.CARD_BY_ID_AND_PHONE_WITH_OTHERS,
        {"card_id": card_id, "phone_hashes": lookup_hashes(e164), "limit": MAX_CARDS_PER_PHONE},
    )
    limit = MAX_CARDS_PER_PHONE - 1
    row = rows[0] if rows else None
    n = len(row) - 3 if row else 0  # the card's columns, then the other cards' three arrays
    if count_pair_lookup is not None:
        count_pair_lookup(row is None)
    if row is None:
        raise CardNotFound()
    other_ids, other_statuses, other_ats = row[n:]
    others = [
        {"card_id": i, "status": s, "status_at": iso_utc(a)}
        for i, s, a in zip(other_ids or (), other_statuses or (), other_ats or (), strict=True)
    ]
    card = _card_from_row(row[:n])
    return {**card.to_dict(), "other_cards": others[:limit], "truncated": len(others) > limit}


def find_card_status(
    conn: Connection,
    card_id: str | None,
    user_phone: str | None,
    region: str = DEFAULT_PHONE_REGION,
) -> dict[str, Any]:
    """The body of GET /get_card_status (also `cardstatus status`).

    By card id: that card. By phone: the card with the latest status plus `other_cards`
    (id, status, status_at) of the same phone. Both: the card only when it belongs to
    that phone, with the phone's other cards. Raises InvalidParameter / CardNotFound.
    """
    return card_status(conn, *status_query(card_id, user_phone, region))


def phone_cards(conn: Connection, e164: str) -> dict[str, Any]:
    """{"cards": [...], "truncated"} of an already normalised phone, latest status first
    (an empty list when the phone has no card)."""
    found, truncated = cards_for_phone(conn, e164)
    return {"cards": [c.to_dict() for c in found], "truncated": truncated}


def card_by_id(conn: Connection, card_id: str | None) -> dict[str, Any]:
    """The body of GET /cards/{card_id}."""
    card = get_card(conn, validate_card_id(card_id))
    if card is None:
        raise CardNotFound()
    return card.to_dict()

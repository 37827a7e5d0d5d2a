"""Erasure on request (README "Privacy"): a phone number, or a whole card, removed on a valid
request, with who asked and why recorded — never the number.

- By phone: every card, event and copy carrying the number (under any key the ring holds)
  loses its hash and last 4 digits; a card that showed the number shows the phone of its
  latest event that still has one, else none; the delivery history stays. The number's hashes
  are kept in `erased_phone` so that a later file carrying it again (the partner still has
  it) says so in its report, and the number is stored again from that file.
- By card id: the card, its events and their copies are deleted; a tombstone keeps its
  version.

Nothing is emitted on the event bus (no status changes); the request's row holds the actor,
the reason and the counts. Called by `cardstatus erase` and `POST /privacy/erase` (the void
function, its own IAM permission).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus import phonehash
from cardstatus.cards import parse_phone, validate_card_id
from cardstatus.errors import InvalidParameter, MissingParameter
from cardstatus.sql import erasure as sql

REASON_MAX_CHARS = 500


@dataclass(frozen=True)
class ErasureResult:
    request_id: int
    kind: str  # "phone" | "card"
    cards: int  # cards whose shown phone was removed (phone) / cards deleted (card)
    events: int
    copies: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise MissingParameter("reason is required (why the data is erased)", parameter="reason")
    if len(text) > REASON_MAX_CHARS or any(not ch.isprintable() for ch in text):
        raise InvalidParameter(
            f"reason: at most {REASON_MAX_CHARS} printable characters", parameter="reason"
        )
    return text


def erase_phone(
    conn: Connection, raw_phone: str | None, reason: str | None, actor: str
) -> ErasureResult:
    """Remove a phone number (any written form) from every card, event and copy."""
    why = _reason(reason)
    e164 = parse_phone(raw_phone)
    pairs = phonehash.versioned_hashes(e164)
    params = {
        "hashes": [h for h, _ in pairs],
        "versions": [v for _, v in pairs],
        "actor": actor,
        "reason": why,
    }
    return _run(conn, sql.ERASE_PHONE, params, "phone")


def erase_card(
    conn: Connection, raw_card_id: str | None, reason: str | None, actor: str
) -> ErasureResult:
    """Delete a card with its events and copies (a tombstone keeps its version)."""
    why = _reason(reason)
    card_id = validate_card_id(raw_card_id)
    return _run(conn, sql.ERASE_CARD, {"card_id": card_id, "actor": actor, "reason": why}, "card")


def _run(conn: Connection, statement: str, params: dict[str, Any], kind: str) -> ErasureResult:
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            row = cur.fetchone()
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    assert row is not None  # the function always returns one row
    request_id, cards, events, copies = row
    return ErasureResult(int(request_id), kind, int(cards), int(events), int(copies))

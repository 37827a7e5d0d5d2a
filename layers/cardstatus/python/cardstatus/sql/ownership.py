"""SQL of card ownership and of the copy merge rule, shared by ingestion (cardstatus.sql.ingest)
and voiding (cardstatus.sql.void) so that both compute exactly the same state (README "Card
ownership", "Domain rules").

Owner: `card.owner_partner` is the partner of the card's earliest copy, the smallest
(occurred_at, status, partner in byte order) over the card's copies in event_copy;
(first_event_at, first_event_rank) is that event. Rows from a partner outside the owner's
group never become copies (ingestion rejects them), so every copy of a card comes from its
owner's group.

Merge rule: an event's copies are ranked

    the owner's copies first, then the other partners of its group (partner name in byte
    order), then by file (meaning key, a content hash: independent of arrival order), then line

and each field takes the first non-empty value in that order: phone, partner, source file and
line from the first copy (phone: the first non-empty), comment and reason together from the
first copy with a comment (else with a reason). Never the smallest value: a copy cannot win by
choosing its phone or comment. partner_row_id (a partner's own row id, no trust attached) keeps
the smallest value.
"""

from __future__ import annotations

# The rank of a copy `o` (event_copy) of its file `f` (ingested_file) for an event whose
# card is owned by `k.owner`.
COPY_RANK = """o.partner IS DISTINCT FROM k.owner, o.partner COLLATE "C",
                COALESCE(f.meaning_key, 'legacy:' || f.sha256, '') COLLATE "C", o.line, o.file_id"""


def merged_events(keys: str) -> str:
    """SELECT of each event of `keys` (card_id, status, occurred_at, owner) merged from its
    copies: copies (0 = none left), phone, comment, reason, partner_row_id, partner,
    source_file_id, source_line, first_started_at (when the earliest carrier was started)."""
    return f"""
SELECT k.card_id, k.status, k.occurred_at,
       count(o.file_id) AS copies,
       (array_agg(o.phone ORDER BY {COPY_RANK}) FILTER (WHERE o.phone IS NOT NULL))[1]
           AS phone,
       (array_agg(o.comment ORDER BY o.comment IS NULL, o.reason IS NULL, {COPY_RANK}))[1]
           AS comment,
       (array_agg(o.reason ORDER BY o.comment IS NULL, o.reason IS NULL, {COPY_RANK}))[1]
           AS reason,
       min(o.partner_row_id COLLATE "C") COLLATE "default" AS partner_row_id,
       (array_agg(o.partner ORDER BY {COPY_RANK}))[1] AS partner,
       (array_agg(o.file_id ORDER BY {COPY_RANK}))[1] AS source_file_id,
       (array_agg(o.line ORDER BY {COPY_RANK}))[1] AS source_line,
       min(f.started_at) AS first_started_at
FROM {keys} k
LEFT JOIN event_copy o USING (card_id, status, occurred_at)
LEFT JOIN ingested_file f ON f.id = o.file_id
GROUP BY k.card_id, k.status, k.occurred_at, k.owner"""


# The owner of each card of `cards` (a relation with card_id) from its copies: the partner of
# the earliest copy, one index scan of event_copy_event per card (NULLs: no copy left).
def owners_from_copies(cards: str) -> str:
    return f"""
SELECT k.card_id, f.partner AS owner, f.occurred_at AS first_event_at,
       f.status AS first_event_rank
FROM {cards} k
LEFT JOIN LATERAL (
    SELECT o.partner, o.occurred_at, o.status
    FROM event_copy o
    WHERE o.card_id = k.card_id
    ORDER BY o.occurred_at, o.status, o.partner COLLATE "C"
    LIMIT 1
) f ON true"""


# A card created by the previous release during a deploy (after migration 0010's backfill) has no
# owner yet: its owner is then the partner of its earliest copy, read when needed (COALESCE
# evaluates it only for such a card) and written by ingestion (sql.ingest.HEAL_OWNERS).
_EARLIEST_COPY_PARTNER = """(
    SELECT o.partner FROM event_copy o WHERE o.card_id = c.card_id
    ORDER BY o.occurred_at, o.status, o.partner COLLATE "C" LIMIT 1)"""

# The chunk's rows whose card is owned by a partner outside this file's partner's group
# (%(group)s: the partners whose cards it may report). One primary-key probe of card per
# distinct card of the chunk (a scalar subquery, never a join that could read card whole).
FOREIGN_ROWS = f"""
WITH owners AS (
    SELECT k.card_id,
           (SELECT COALESCE(c.owner_partner, {_EARLIEST_COPY_PARTNER})
            FROM card c WHERE c.card_id = k.card_id) AS owner
    FROM (SELECT DISTINCT card_id FROM staging_event) k
)
SELECT s.source_line, s.card_id, o.owner
FROM owners o
JOIN staging_event s USING (card_id)
WHERE o.owner <> ALL (%(group)s::text[])
ORDER BY s.source_line
"""

DROP_FOREIGN_ROWS = "DELETE FROM staging_event WHERE source_line = ANY (%(lines)s::integer[])"

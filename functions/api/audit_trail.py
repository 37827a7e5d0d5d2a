"""The lookup audit of the card routes (README "Privacy"): one row per lookup, written before
the answer leaves, so an answered lookup is always accounted for (a failed write fails the
request like any database error).

Without a reader (lookups and audit rows on one connection) the row goes out with the lookup
itself, in one round trip (`pending`; cardstatus/audit.py AuditedLookup): the INSERT names the
cards the lookup's predicate finds, and `answered` records, in a second row, any card answered
that the first one missed (one that changed between the two statements). With a reader, the
row is its own round trip on the writer, in the handler's thread (README "Who looked at a
card": a writer thread or an asynchronous second connection was measured and cost more).
A card-id + phone lookup writes it in its budget count's transaction, sent with that
transaction's COMMIT (`with_budget`; no row when the budget refuses the lookup).

The caller is the IAM identity API Gateway verified (`requestContext.identity.userArn`);
`cardstatus serve`/`local` present every request as one local caller.
"""

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from cardstatus import audit
from cardstatus.model import redact_phones

# Operation (route function name) -> the route as the trail names it.
LOOKUP_ROUTES = {
    "get_card_status": "GET /get_card_status",
    "search_cards": "POST /cards/search",
    "get_card": "GET /cards/{card_id}",
    "list_cards": "GET /cards",
}
LISTING_ROUTE = "GET /cards"  # a phone without cards is an empty list there, not a 404


class LookupAudit:
    def __init__(
        self,
        app: APIGatewayRestResolver,
        connection: Callable[[], Any],
        one_connection: Callable[[], bool],
    ) -> None:
        """connection: the writer; one_connection(): whether the lookups run on it too (no
        reader), so that a lookup can carry its own row."""
        self._app = app
        self._connection = connection
        self._one_connection = one_connection

    def _caller(self) -> str:
        identity = self._app.current_event.request_context.identity
        return identity.user_arn or identity.caller or "unknown"

    def _request_id(self) -> str:
        request_id = self._app.current_event.request_context.request_id
        return request_id or str(uuid.uuid4())  # every API Gateway request has one

    def pending(self) -> audit.AuditedLookup | None:
        """The current lookup's row, for the lookup to write in its own round trip (pass it to
        the cardstatus.cards function); None with a reader (the row is then written by
        `answered`/`not_found`) or outside the card routes."""
        route = self._route()
        if route is None or not self._one_connection():
            return None
        row = audit.AuditedLookup(
            caller=self._caller(),
            route=route,
            by_phone=bool(self._app.context.get("_user_phone")),
            request_id=self._request_id(),
            asked=self._asked(),
            listing=route == LISTING_ROUTE,
        )
        self._app.append_context(_audit_row=row)
        return row

    def _route(self) -> str | None:
        route = self._app.context.get("_route")
        return LOOKUP_ROUTES.get(getattr(getattr(route, "func", None), "__name__", ""))

    def answered(self, card_ids: Iterable[str]) -> None:
        """A lookup answered with these cards (none for a phone without cards)."""
        if self._app.context.get("_audited"):
            return
        row = self._sent_with_lookup()
        if row is None:
            self._write(audit.FOUND, tuple(card_ids))
            return
        missed = tuple(card_id for card_id in card_ids if card_id not in row.recorded)
        if missed:  # cards that changed between the row and the lookup: named in a second row
            self._write(audit.FOUND, missed)

    def not_found(self) -> None:
        """A lookup answered 404: the card id asked for, if any (never the phone)."""
        if not self._app.context.get("_audited") and self._sent_with_lookup() is None:
            self._write(audit.NOT_FOUND, self._asked())  # (else: not found, or found then)

    def _sent_with_lookup(self) -> audit.AuditedLookup | None:
        """The current lookup's row if the lookup's own query wrote it (`pending`)."""
        row: audit.AuditedLookup | None = self._app.context.get("_audit_row")
        return row if row is not None and row.sent else None

    def with_budget(self, mismatch: bool, card_ids: list[str]) -> tuple[str, dict[str, Any]] | None:
        """The row of a card-id + phone lookup as a statement for the budget's transaction
        (cardstatus/lookup_budget.py `spend`, `then`): its 404 for a mismatch, else the cards
        answered. Call `written()` once that transaction committed."""
        if mismatch:
            record = self._record(audit.NOT_FOUND, self._asked())
        else:
            record = self._record(audit.FOUND, tuple(card_ids))
        return None if record is None else audit.insert_statement(record)

    def written(self) -> None:
        """The current lookup's row is written (with the budget count): not again."""
        self._app.append_context(_audited=True)

    def _asked(self) -> tuple[str, ...]:
        asked = self._app.context.get("_card_id")
        # a phone typed as a card id stays masked, like everywhere else
        return (redact_phones(str(asked).upper()),) if asked else ()

    def _record(self, outcome: str, card_ids: tuple[str, ...]) -> audit.LookupRecord | None:
        route = self._route()
        if route is None:  # not a card route
            return None
        by_phone = bool(self._app.context.get("_user_phone"))
        return audit.LookupRecord(
            self._caller(), route, by_phone, outcome, card_ids, self._request_id()
        )

    def _write(self, outcome: str, card_ids: tuple[str, ...]) -> None:
        record = self._record(outcome, card_ids)
        if record is not None:
            audit.record_lookup(self._connection(), record)

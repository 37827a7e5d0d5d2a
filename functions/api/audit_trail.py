"""The lookup audit of the card routes (README "Privacy"): one row per lookup, written before
the answer leaves, so an answered lookup is always accounted for (a failed write fails the
request like any database error).

The row is written in the handler's thread, on the writer connection (README "Who looked at
a card": a writer thread or an asynchronous second connection was measured and cost more).
A card-id + phone lookup writes it in its budget count's transaction, sent with that
transaction's COMMIT (`with_budget`; no row when the budget refuses the lookup).

The caller is the IAM identity API Gateway verified (`requestContext.identity.userArn`);
`cardstatus serve`/`local` present every request as one local caller.
"""

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


class LookupAudit:
    def __init__(self, app: APIGatewayRestResolver, connection: Callable[[], Any]) -> None:
        self._app = app
        self._connection = connection

    def _caller(self) -> str:
        identity = self._app.current_event.request_context.identity
        return identity.user_arn or identity.caller or "unknown"

    def _route(self) -> str | None:
        route = self._app.context.get("_route")
        return LOOKUP_ROUTES.get(getattr(getattr(route, "func", None), "__name__", ""))

    def answered(self, card_ids: Iterable[str]) -> None:
        """A lookup answered with these cards (none for a phone without cards)."""
        if not self._app.context.get("_audited"):
            self._write(audit.FOUND, tuple(card_ids))

    def not_found(self) -> None:
        """A lookup answered 404: the card id asked for, if any (never the phone)."""
        if not self._app.context.get("_audited"):
            self._write(audit.NOT_FOUND, self._asked())

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
        return audit.LookupRecord(self._caller(), route, by_phone, outcome, card_ids)

    def _write(self, outcome: str, card_ids: tuple[str, ...]) -> None:
        record = self._record(outcome, card_ids)
        if record is not None:
            audit.record_lookup(self._connection(), record)

"""The lookup audit of the card routes (README "Privacy"): one row per lookup, written before
the answer leaves, so an answered lookup is always accounted for (a failed write fails the
request like any database error).

The row is written in the handler's thread, on the writer connection (README "Who looked at
a card": a writer thread or an asynchronous second connection was measured and cost more).

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
        self._write(audit.FOUND, tuple(card_ids))

    def not_found(self) -> None:
        """A lookup answered 404: the card id asked for, if any (never the phone)."""
        asked = self._app.context.get("_card_id")
        # a phone typed as a card id stays masked, like everywhere else
        self._write(audit.NOT_FOUND, (redact_phones(str(asked).upper()),) if asked else ())

    def _write(self, outcome: str, card_ids: tuple[str, ...]) -> None:
        route = self._route()
        if route is None:  # not a card route
            return
        by_phone = bool(self._app.context.get("_user_phone"))
        record = audit.LookupRecord(self._caller(), route, by_phone, outcome, card_ids)
        audit.record_lookup(self._connection(), record)

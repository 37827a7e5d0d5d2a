"""The lookup audit of the card routes (README "Privacy"): one row per lookup, written before
the answer leaves, so an answered lookup is always accounted for (a failed write fails the
request like any database error: the same JSON 503 or 500, and no card in the answer).

An answered lookup sends its row from the writer thread as soon as it knows the card ids
(`answering`, called by cardstatus.cards before it builds the answer; cardstatus/audit.py
`start_record`) and the answer is built, validated and serialised meanwhile; the `settle`
middleware, around the route and Powertools' response validation, waits for the row before
the answer goes on. Only then is the request's `found` log line written (`answered`): a
failed write raises there instead, and Powertools' exception handlers (errors.py) answer
with the error, log it and drop the connection. Until the wait, nothing else uses the writer
connection (it may be the lookups' connection too, without a reader): an error before the
wait waits for the write first (`abandon`). A 404 (`not_found`) writes its row before the
error handler answers, in the handler's own thread.

The caller is the IAM identity API Gateway verified (`requestContext.identity.userArn`);
`cardstatus serve`/`local` present every request as one local caller.
"""

import contextlib
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from cardstatus import audit
from cardstatus.model import redact_phones
from functions.api.observability import RequestLog

# Operation (route function name) -> the route as the trail names it.
LOOKUP_ROUTES = {
    "get_card_status": "GET /get_card_status",
    "search_cards": "POST /cards/search",
    "get_card": "GET /cards/{card_id}",
    "list_cards": "GET /cards",
}


class LookupAudit:
    def __init__(
        self,
        app: APIGatewayRestResolver,
        connection: Callable[[], Any],
        requests: RequestLog,
    ) -> None:
        self._app = app
        self._connection = connection
        self._requests = requests
        # The current request's row in flight and its `found` log line's fields.
        self._in_flight: audit.InFlight | None = None
        self._found: dict[str, Any] | None = None

    def _caller(self) -> str:
        identity = self._app.current_event.request_context.identity
        return identity.user_arn or identity.caller or "unknown"

    def _route(self) -> str | None:
        route = self._app.context.get("_route")
        return LOOKUP_ROUTES.get(getattr(getattr(route, "func", None), "__name__", ""))

    def answering(self, card_ids: list[str]) -> None:
        """A lookup will answer these cards (none for a phone without cards): its row is sent
        now (cardstatus.cards calls this before it builds the answer)."""
        self._in_flight = self._begin(audit.FOUND, tuple(card_ids))

    def answered(self, **log_fields: Any) -> None:
        """The answer is built: the request is logged as `found` with `log_fields` once its
        row is written (`settle`)."""
        self._found = log_fields

    def not_found(self) -> None:
        """A lookup answered 404: the card id asked for, if any (never the phone)."""
        asked = self._app.context.get("_card_id")
        # a phone typed as a card id stays masked, like everywhere else
        self._write(audit.NOT_FOUND, (redact_phones(str(asked).upper()),) if asked else ())

    def settle(self, app: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Any:
        """Middleware: the answer goes on only once its audit row is written."""
        try:
            response = next_middleware(app)
        except BaseException:
            self.abandon()
            raise
        in_flight, self._in_flight = self._in_flight, None
        found, self._found = self._found, None
        if in_flight is not None:
            in_flight.wait()  # its error is the request's: 503/500, no card answered
        if found is not None:
            self._requests.record("found", **found)
        return response

    def abandon(self) -> None:
        """The request fails anyway: wait until the writer is done with the connection (the
        error handler may drop it), whatever the row's fate."""
        in_flight, self._in_flight, self._found = self._in_flight, None, None
        if in_flight is not None:
            with contextlib.suppress(Exception):
                in_flight.wait()

    def _record(self, outcome: str, card_ids: tuple[str, ...]) -> audit.LookupRecord | None:
        route = self._route()
        if route is None:  # not a card route
            return None
        by_phone = bool(self._app.context.get("_user_phone"))
        return audit.LookupRecord(self._caller(), route, by_phone, outcome, card_ids)

    def _begin(self, outcome: str, card_ids: tuple[str, ...]) -> audit.InFlight | None:
        record = self._record(outcome, card_ids)
        return None if record is None else audit.start_record(self._connection(), record)

    def _write(self, outcome: str, card_ids: tuple[str, ...]) -> None:
        record = self._record(outcome, card_ids)
        if record is not None:
            audit.record_lookup(self._connection(), record)

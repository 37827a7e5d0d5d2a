"""The lookup audit of the card routes (README "Privacy", "Who looked at a card"): one record
per lookup, answered or 404, printed as one JSON line before the answer leaves.

The line goes to the function's log stream: a CloudWatch Logs subscription on the api's log
group hands such lines to the audit function, which appends them to the lookup_audit table
(infra/audit.py, functions/audit). So a lookup does no database work for its audit, and the
record names exactly the cards the answer holds: it is written from the answer itself. A
lookup the budget refuses (429) is not answered and has no record.

The caller is the IAM identity API Gateway verified (`requestContext.identity.userArn`);
`cardstatus serve`/`local` present every request as one local caller.
"""

import sys
import uuid
from collections.abc import Callable, Iterable

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


class AuditLines:
    """Where the audit lines go: stdout, which Lambda ships to the function's log group (one
    line, one log event; flushed at once, so the line is out before the answer), and anyone
    listening in the same process (`listeners`: the local stack's stand-in for the log
    subscription, cardstatus_dev.local_audit)."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str], None]] = []

    def write(self, line: str) -> None:
        print(line, file=sys.stdout, flush=True)
        for listener in self.listeners:
            listener(line)


class LookupAudit:
    def __init__(self, app: APIGatewayRestResolver, lines: AuditLines) -> None:
        self._app = app
        self._lines = lines

    def answered(self, card_ids: Iterable[str]) -> None:
        """A lookup answered with these cards (none for a phone without cards)."""
        self._write(audit.FOUND, tuple(card_ids))

    def not_found(self) -> None:
        """A lookup answered 404: the card id asked for, if any (never the phone)."""
        self._write(audit.NOT_FOUND, self._asked())

    def _asked(self) -> tuple[str, ...]:
        asked = self._app.context.get("_card_id")
        # a phone typed as a card id stays masked, like everywhere else
        return (redact_phones(str(asked).upper()),) if asked else ()

    def _route(self) -> str | None:
        route = self._app.context.get("_route")  # set by Powertools when a route matched
        return LOOKUP_ROUTES.get(getattr(getattr(route, "func", None), "__name__", ""))

    def _write(self, outcome: str, card_ids: tuple[str, ...]) -> None:
        route = self._route()
        if route is None:  # not a card route
            return
        event = self._app.current_event
        identity = event.request_context.identity
        record = audit.LookupRecord(
            caller=identity.user_arn or identity.caller or "unknown",
            route=route,
            by_phone=bool(self._app.context.get("_user_phone")),
            outcome=outcome,
            card_ids=card_ids,
            # every API Gateway request has one; the local server's too
            request_id=event.request_context.request_id or str(uuid.uuid4()),
        )
        self._lines.write(record.to_line())

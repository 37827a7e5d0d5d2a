"""Partner feed health routes of the status API (README "Partner feed health"): each known
partner's feed state, last file, due time, 7-day reject rate, stuck cards and 14 days of rows.
Same IAM auth, error model and OpenAPI document as the other routes; each route calls one
`cardstatus.partners` function.

`register(app, connection, requests)` (app.py calls it once) includes the router.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from cardstatus import partners
from cardstatus.config import settings
from functions.api.observability import RequestLog
from functions.api.partner_schemas import AtQuery, PartnerHealthOut, PartnerListOut, PartnerPath
from functions.api.schemas import LIST_ERRORS, _error_response

router = APIGatewayRouter()
PARTNER_ERRORS = {
    **LIST_ERRORS,
    404: _error_response("No configured or seen partner has this name"),
}


class _Bound:
    connection: Callable[[], Any]
    requests: RequestLog


_bound = _Bound()


def register(
    app: APIGatewayRestResolver, connection: Callable[[], Any], requests: RequestLog
) -> None:
    """Add GET /partners and GET /partners/{partner} to app."""
    _bound.connection, _bound.requests = connection, requests
    app.include_router(router)


@router.get(
    "/partners",
    summary="Feed health of every known partner",
    description=(
        "Configured and seen partners: feed state (on_time, late, missing, not_monitored), "
        "last file, due time, last 7 days, today, stuck cards, 14 days of rows, volume warning."
    ),
    operation_id="listPartners",
    tags=["ops"],
    responses={200: {"description": "Every partner, by name"}, **LIST_ERRORS},
)
def list_partners(at: AtQuery = None) -> PartnerListOut:
    healths = partners.all_health(_bound.connection(), settings(), at)
    body = partners.summary(healths)
    _bound.requests.record("found", count=len(healths))
    return body  # type: ignore[return-value]  # validated and serialised by Powertools


@router.get(
    "/partners/<partner>",
    summary="Feed health of one partner (name in any case)",
    operation_id="getPartner",
    tags=["ops"],
    responses={200: {"description": "The partner's health"}, **PARTNER_ERRORS},
)
def get_partner(partner: PartnerPath, at: AtQuery = None) -> PartnerHealthOut:
    body = partners.one_health(_bound.connection(), settings(), partner, at).to_json()
    _bound.requests.record("found", partner=body["partner"])
    return body  # type: ignore[return-value]

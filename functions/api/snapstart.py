"""Lambda SnapStart runtime hooks of the status API (docs/DEPLOY.md "SnapStart").

With SnapStart on (`functions.api.snapStart`, prod), Lambda runs the init once when a
version is published, then the before-snapshot hooks, snapshots the execution environment
and resumes new environments from that snapshot instead of importing this module again.

- Before the snapshot, `warm`: what the first request would otherwise do once - each
  route's validation and response models (Powertools builds them on a route's first
  request), the operations routers (imported on first need: lazy_routes.py), the error
  answers, botocore's client and signer (the first connection's IAM token), the free-text
  phone pattern (cardstatus.model), the phone number metadata of the first lookup by phone
  (imported on first use, `cards.parse_phone`) - with requests that never reach the
  database; then forget their metrics and context, and drop any database connection.
- After a restore, `after_restore`: drop any connection (it would belong to the snapshot's
  socket), and reseed `random` (every restored environment would draw the same numbers).

`snapshot_restore_py` ships with Lambda's managed Python runtimes; elsewhere (tests, local
runs, SnapStart off) no hook runs.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from cardstatus import cards
from cardstatus.db import LazyConnection
from cardstatus.model import redact_phones
from functions.api.observability import logger, metrics

try:
    import snapshot_restore_py as _runtime_hooks
except ImportError:  # not in Lambda's managed runtime
    _runtime_hooks = None

_TOO_LONG_ID = "a" * (cards.CARD_ID_MAX_LENGTH + 1)
_TOO_LONG_PHONE = "1" * (cards.PHONE_MAX_LENGTH + 1)
# libphonenumber's example mobile number of the default region (AE), nobody's phone.
_EXAMPLE_PHONE = "+971501234567"

# (method, path, query): each one is answered without the database (400, 405).
WARM_REQUESTS: tuple[tuple[str, str, dict[str, str] | None], ...] = (
    ("GET", "/get_card_status", {"card_id": _TOO_LONG_ID}),
    ("GET", "/get_card_status", None),
    ("GET", f"/cards/{_TOO_LONG_ID}", None),
    ("GET", "/cards", {"user_phone": _TOO_LONG_PHONE}),
    ("POST", "/health", None),
    ("POST", "/cards/search", None),  # no body
    ("GET", "/files", {"limit": "0"}),
    ("GET", "/files/0", None),
    ("GET", "/files/0/rejects", None),
    ("GET", "/stuck_cards", {"status": "DELIVERED"}),
)


class _WarmContext:
    function_name = "snapstart-warm"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:snapstart-warm"
    aws_request_id = "snapstart-warm"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _event(method: str, path: str, query: dict[str, str] | None) -> dict[str, Any]:
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"requestId": "snapstart-warm", "stage": "warm", "path": path},
        "body": None,
        "isBase64Encoded": False,
    }


def _warm_aws_signer() -> None:
    """Import and exercise botocore's client and presigner, as the first connection's IAM
    token needs them (dummy credentials: nothing is resolved, nothing leaves the process)."""
    import botocore.session

    client: Any = botocore.session.get_session().create_client(
        "rds",
        region_name=os.environ.get("AWS_REGION") or "us-east-1",
        aws_access_key_id="snapstart-warm",
        aws_secret_access_key="snapstart-warm",  # noqa: S106 (a placeholder, never used)
    )
    client.generate_db_auth_token(DBHostname="warm.invalid", Port=5432, DBUsername="warm")


def warm(app: APIGatewayRestResolver, db: LazyConnection) -> None:
    """Before the snapshot: run the one-time work of the first requests, leave no trace."""
    level = logger.log_level
    logger.setLevel(logging.ERROR)  # the warm-up's own request lines are not traffic
    try:
        for method, path, query in WARM_REQUESTS:
            app.resolve(_event(method, path, query), _WarmContext())  # type: ignore[arg-type]
            metrics.clear_metrics()  # one request's dimensions each, as log_metrics does
        _warm_aws_signer()
        redact_phones(_TOO_LONG_PHONE)  # compiles the free-text pattern (built on first use)
        cards.parse_phone(_EXAMPLE_PHONE)  # imports phonenumbers and the region's metadata
    finally:
        logger.setLevel(level)
        metrics.clear_metrics()  # else the first real invocation would publish them
        app.clear_context()
        db.discard()


def after_restore(db: LazyConnection) -> None:
    """After a restore: no connection from the snapshot, fresh randomness."""
    db.discard()
    random.seed()


def register(app: APIGatewayRestResolver, db: LazyConnection, hooks: Any = None) -> bool:
    """Register the hooks with the runtime (or `hooks`, in tests); False when there is none."""
    hooks = hooks if hooks is not None else _runtime_hooks
    if hooks is None:
        return False
    hooks.register_before_snapshot(warm, app, db)
    hooks.register_after_restore(after_restore, db)
    return True

"""The local stack's stand-in for the CloudWatch Logs subscription of the api's audit lines
(infra/audit.py; README "Who looked at a card").

In AWS the api prints one JSON line per lookup to its log group, and the subscription hands
those lines, in batches, to the audit function (functions/audit), which appends them to
lookup_audit. Locally (`cardstatus serve`/`local`, the tests) the api module's `audit_lines`
gets a listener that hands each line at once to that same function, in the event shape
CloudWatch Logs delivers (gzipped, base64-encoded). As in AWS, a failure of the audit
function never fails the lookup: it is reported on stderr (the line holds no phone).
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from cardstatus_dev.lambda_context import LocalContext
from cardstatus_dev.paths import import_function

API_LOG_GROUP = "/aws/lambda/cardstatus-api-local"
FILTER_NAME = "cardstatus-audit-local"


def subscription_event(lines: Sequence[str], *, log_group: str = API_LOG_GROUP) -> dict[str, Any]:
    """What CloudWatch Logs hands a subscribed function for these log lines."""
    now_ms = int(time.time() * 1000)
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": log_group,
        "logStream": "local",
        "subscriptionFilters": [FILTER_NAME],
        "logEvents": [
            {"id": str(i), "timestamp": now_ms, "message": line} for i, line in enumerate(lines)
        ],
    }
    data = base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()
    return {"awslogs": {"data": data}}


class LocalAuditSubscription:
    """A listener of the api's audit lines that delivers each to the audit function."""

    def __init__(self, deliver: Callable[[dict[str, Any], Any], Any]) -> None:
        self._deliver = deliver

    def __call__(self, line: str) -> None:
        try:
            self._deliver(subscription_event([line]), LocalContext("audit", timeout_ms=60_000))
        except Exception as exc:  # as in AWS: the lookup is answered; this delivery is not
            sys.stderr.write(f"audit function failed ({type(exc).__name__}): line not appended\n")


def subscribe(api: ModuleType) -> None:
    """Deliver the audit lines of this api module to the audit function, and nowhere else (its
    only listener, as the one subscription of the api's log group)."""
    audit_function = import_function("audit")
    audit_function.DB.reset_settings(None)  # the database the environment names now
    api.audit_lines.listeners[:] = [LocalAuditSubscription(audit_function.handler)]

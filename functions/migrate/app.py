"""Deploy-time migrate Lambda: the onEvent handler of a CDK Provider-framework custom resource.

Create/Update: connect (DB_SECRET_ARN, sslmode=verify-full) and apply pending migrations, then
hash any phone still stored in full (cardstatus.phonebackfill, with the phone key) and fill
card.status_partner of cards that predate 0024 (cardstatus.statuspartner); the applied
versions go back to CloudFormation as resource data. Any failure raises, the provider reports
FAILED, and the deployment fails (and rolls back). Delete: nothing to do (the schema lives as
long as the database).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from cardstatus import db
from cardstatus.migrate import apply_migrations, available_migrations, migrations_fingerprint
from cardstatus.phonebackfill import backfill_phones
from cardstatus.statuspartner import backfill_status_partner

logger = Logger()

PHYSICAL_ID = "cardstatus-schema-migrations"
# Seconds of the function's 300 s (cdk.json) the status_partner backfill may take after the
# migrations; what is left is done by the next run (at 10M cards the open ones come first).
STATUS_PARTNER_BUDGET_S = 120.0


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("RequestType")
    physical_id = event.get("PhysicalResourceId") or PHYSICAL_ID
    if request == "Delete":
        logger.info("delete: migrations are not reverted", extra={"physical_id": physical_id})
        return {"PhysicalResourceId": physical_id}
    if request not in ("Create", "Update"):
        raise ValueError(f"unexpected custom resource request type {request!r}")

    props = event.get("ResourceProperties") or {}
    expected = props.get("MigrationsFingerprint")
    shipped = migrations_fingerprint()
    if expected and expected != shipped:
        # The layer and the template disagree: never half-migrate to an unknown schema.
        raise RuntimeError(
            f"migration files in the layer (fingerprint {shipped[:12]}) differ from the "
            f"deployed template ({str(expected)[:12]}); rebuild the layers and redeploy"
        )

    conn = db.connect()
    try:
        applied = apply_migrations(conn)
        # Phones stored in full before 0013 (or by the previous release during the rollout)
        # are hashed with the key (PHONE_KEY_SECRET_ARN) and NULLed: README "Privacy".
        hashed = backfill_phones(conn)
        # card.status_partner of cards that predate 0024, open cards first, within the
        # function's time (the next run continues): cardstatus.statuspartner.
        partners = backfill_status_partner(conn, budget_s=STATUS_PARTNER_BUDGET_S)
    finally:
        conn.close()
    versions = [m.version for m in available_migrations()]
    logger.info(
        "migrations applied",
        extra={
            "applied_now": applied,
            "latest": versions[-1] if versions else None,
            "phones_hashed": hashed,
            "status_partner": partners,
        },
    )
    return {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {
            "Applied": ",".join(applied),
            "AppliedCount": str(len(applied)),
            "LatestVersion": versions[-1] if versions else "",
            "Fingerprint": shipped,
        },
    }

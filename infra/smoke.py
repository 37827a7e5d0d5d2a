"""The smoke test's permission (docs/DEPLOY.md "Smoke test"): one managed policy holding
exactly what `cardstatus smoke` does, so the pipeline's smoke role (or a person) gets it with
one attachment (stack output `SmokePolicyArn`):

* upload under `incoming/smoke/` (the reserved partner) and read its reports, through the
  bucket's KMS key via S3 only;
* call the routes it uses: GET /health and /cards/{id}, POST /cards/search, and
  POST /files/{id}/void.

The API's resource policy still decides who may call: the role must also be listed in
`api.callers` (for its API key) and, for the void, in `api.voidCallers`.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.api import Api
from infra.nag import ack, arn_of, logical_id, wildcard_finding
from infra.settings import Settings
from infra.storage import Storage

SMOKE_PARTNER = "smoke"  # cardstatus_dev/smoke.py SMOKE_PARTNER


class SmokeAccess(Construct):
    def __init__(
        self, scope: Construct, id: str, *, settings: Settings, storage: Storage, api: Api
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        stage = settings.get_str("api", "stageName")
        uploads = f"{settings.incoming_prefix}{SMOKE_PARTNER}/"
        reports = f"{settings.reports_prefix}{uploads}"
        rest_api = api.rest_api
        routes = [("GET", "/health"), ("GET", "/cards/*"), ("POST", "/cards/search")]
        routes.append(("POST", "/files/*/void"))
        self.policy = iam.ManagedPolicy(
            self,
            "SmokePolicy",
            description="cardstatus smoke: upload under incoming/smoke/, read its reports, "
            "look the card up and void the file",
            statements=[
                iam.PolicyStatement(
                    sid="UploadSmokeFiles",
                    actions=["s3:PutObject"],
                    resources=[storage.bucket.arn_for_objects(f"{uploads}*")],
                ),
                iam.PolicyStatement(
                    sid="ReadSmokeReports",
                    actions=["s3:GetObject"],
                    resources=[storage.bucket.arn_for_objects(f"{reports}*")],
                ),
                iam.PolicyStatement(
                    sid="EncryptViaS3",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[storage.data_key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}
                    },
                ),
                iam.PolicyStatement(
                    sid="CallTheRoutesItChecks",
                    actions=["execute-api:Invoke"],
                    resources=[rest_api.arn_for_execute_api(m, p, stage) for m, p in routes],
                ),
            ],
        )
        bucket = arn_of(storage.bucket)
        api_arn = (
            "arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{logical_id(rest_api)}>/{stage}"
        )
        for finding, reason in (
            (f"{bucket}/{uploads}*", "Smoke file names are new each run, under smoke/ only."),
            (f"{bucket}/{reports}*", "Each smoke file's report, under reports/…/smoke/ only."),
            (f"{api_arn}/GET/cards/*", "The card id is new each run: the one by-id lookup."),
            (f"{api_arn}/POST/files/*/void", "The smoke file's id is known only after upload."),
        ):
            ack(self.policy, wildcard_finding(finding), reason)
        CfnOutput(
            stack,
            "SmokePolicyArn",
            value=self.policy.managed_policy_arn,
            description="Attach to the role that runs `cardstatus smoke` (docs/DEPLOY.md)",
        )

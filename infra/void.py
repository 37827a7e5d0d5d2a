"""POST /files/{file_id}/void (README "Voiding a file"): the void function and its API method.

* The function (functions/void) connects to the instance directly as `cardstatus_void` with an
  IAM token (rds-db:connect on that user only): a void is one long transaction with temporary
  tables, which does not belong behind RDS Proxy. It may write reports/ objects (the voided
  file's report is rewritten) and nothing else in S3. It publishes the void's status-change
  events after commit (infra/events.py `grant_publish`, from the stack: PutEvents on the bus
  only, EVENT_BUS_NAME, HTTPS to the EventBridge endpoint).
* Its method on the REST API: IAM (SigV4), no API key (ops people, not API callers). The
  resource policy admits only api.voidCallers there (infra/api.py `caller_statements`), and a
  caller also needs the VoidPolicy (execute-api:Invoke on this one method ARN), which the
  ordinary InvokePolicy (GET only) does not grant.
* Outputs: VoidInvokeArn (the method ARN to grant) and VoidPolicyArn (a managed policy with
  exactly that statement) — docs/DEPLOY.md "Who may void a file".
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from cardstatus import dbroles
from infra.api import PRIVACY_PATH, VOID_PATH, Api
from infra.database import Database
from infra.functions import Functions
from infra.nag import ack, arn_of, logical_id, wildcard_finding
from infra.network import Network
from infra.settings import Settings
from infra.storage import Storage


class VoidEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        functions: Functions,
        network: Network,
        database: Database,
        storage: Storage,
        api: Api,
    ) -> None:
        super().__init__(scope, construct_id)
        self._build_function(settings, functions, network, database, storage)
        self._build_method(settings, api)
        self._add_outputs()

    def _build_function(
        self,
        settings: Settings,
        functions: Functions,
        network: Network,
        database: Database,
        storage: Storage,
    ) -> None:
        """The void function: direct IAM connection as cardstatus_void, reports/ rewrites."""
        self.security_group = network.security_group("VoidSg", "void function")
        database.allow_direct(self.security_group, "void")
        network.allow_https_to_s3(self.security_group)
        self.function = functions.add_function(
            "Void",
            "void",
            self.security_group,
            {
                "DB_HOST": database.writer_endpoint,
                "DB_USER": dbroles.VOID,
                "DB_IAM_AUTH": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
            },
        )
        database.grant_connect_direct(self.function, dbroles.VOID)
        reports = settings.reports_prefix
        bucket = storage.bucket
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RewriteReports",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{reports}*")],
            )
        )
        region = Stack.of(self).region
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DataKeyViaS3",
                actions=["kms:GenerateDataKey"],
                resources=[storage.data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            )
        )
        ack(
            self.function.role,  # type: ignore[arg-type]
            wildcard_finding(f"{arn_of(bucket)}/{reports}*"),
            f"Report names follow partner-chosen object keys: the void function rewrites the "
            f"voided file's report, only under {reports}.",
        )

    def _build_method(self, settings: Settings, api: Api) -> None:
        """The method: IAM auth, no API key, its own permission (VoidPolicy)."""
        stage_name = settings.get_str("api", "stageName")
        resource = api.rest_api.root.resource_for_path(VOID_PATH)
        self.method = resource.add_method(
            "POST",
            apigw.LambdaIntegration(self.function, proxy=True, allow_test_invoke=False),
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=False,
            request_parameters={"method.request.path.file_id": True},
        )
        self.invoke_arn = api.rest_api.arn_for_execute_api("POST", "/files/*/void", stage_name)
        self._build_privacy_method(stage_name, api)
        self.policy = iam.ManagedPolicy(
            self,
            "VoidPolicy",
            description="Void cardstatus files: POST /files/{file_id}/void (SigV4), nothing else",
            statements=[
                iam.PolicyStatement(
                    sid="VoidFiles", actions=["execute-api:Invoke"], resources=[self.invoke_arn]
                )
            ],
        )
        ack(
            self.policy,
            wildcard_finding(
                "arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{logical_id(api.rest_api)}>/{stage_name}/POST/files/*/void"
            ),
            "The file id is the path parameter: the policy grants voiding any file, and nothing "
            "but that one method.",
        )

    def _build_privacy_method(self, stage_name: str, api: Api) -> None:
        """POST /privacy/erase on the same function: its own permission (PrivacyPolicy), and
        the resource policy admits only api.privacyCallers (README "Privacy")."""
        resource = api.rest_api.root.resource_for_path(PRIVACY_PATH)
        self.privacy_method = resource.add_method(
            "POST",
            apigw.LambdaIntegration(self.function, proxy=True, allow_test_invoke=False),
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=False,
        )
        self.privacy_invoke_arn = api.rest_api.arn_for_execute_api("POST", PRIVACY_PATH, stage_name)
        self.privacy_policy = iam.ManagedPolicy(
            self,
            "PrivacyPolicy",
            description="Erase a phone or a card on request: POST /privacy/erase (SigV4), nothing "
            "else",
            statements=[
                iam.PolicyStatement(
                    sid="EraseOnRequest",
                    actions=["execute-api:Invoke"],
                    resources=[self.privacy_invoke_arn],
                )
            ],
        )

    def _add_outputs(self) -> None:
        stack = Stack.of(self)
        CfnOutput(
            stack,
            "VoidInvokeArn",
            value=self.invoke_arn,
            description="execute-api:Invoke resource of POST /files/{file_id}/void (not in the "
            "InvokePolicy): grant it to ops roles listed in api.voidCallers",
        )
        CfnOutput(
            stack,
            "PrivacyPolicyArn",
            value=self.privacy_policy.managed_policy_arn,
            description="Managed policy that allows exactly POST /privacy/erase (grant it to the "
            "roles listed in api.privacyCallers)",
        )
        CfnOutput(
            stack,
            "VoidPolicyArn",
            value=self.policy.managed_policy_arn,
            description="Managed policy that allows exactly the void method",
        )

"""REST API: IAM (SigV4) on every method, a resource policy that admits only the callers listed
in cdk.json (api.callers), one API key + usage plan per caller (per-caller throttling and
quota), query-parameter validation, stage throttling, WAFv2 rate limiting, access logs without
query strings, data tracing and API Gateway X-Ray tracing off (the URL carries the phone; the
function's own tracing stays), no test-invoke permissions; optionally a private endpoint
reachable only through an execute-api VPC endpoint (`-c apiEndpointType=private`)."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra.nag import ack, logical_id, managed_policy_finding, wildcard_finding
from infra.network import Network, retention_days
from infra.settings import ACCOUNT, PARTITION, Caller, Settings, principal_account
from infra.storage import removal_policy

# Fields of the access log. No $context.path (it has the card id) and nothing that carries
# the query string (user_phone travels there): only the route template.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "errorType": "$context.error.responseType",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "wafStatus": "$context.waf.status",
    "xrayTraceId": "$context.xrayTraceId",
}

# (path, query parameters {name: required}) of the routes the api function serves.
ROUTES: dict[str, dict[str, bool]] = {
    "/get_card_status": {"card_id": False, "user_phone": False},
    # Optional at the gateway so a missing phone gets the API's own `missing_parameter` error.
    "/cards": {"user_phone": False},
    "/cards/{card_id}": {},
    "/health": {},
}

# Operations routes (README "Operations"), read-only like the card routes. Path parameters are
# required by their resource; every query parameter is optional (the API names a bad one).
OPS_ROUTES: dict[str, dict[str, bool]] = {
    "/files": {"partner": False, "outcome": False, "since": False, "limit": False, "cursor": False},
    "/files/{file_id}": {},
    "/files/{file_id}/rejects": {"cursor": False, "limit": False},
    "/stuck_cards": {
        "status": False,
        "older_than_hours": False,
        "partner": False,
        "cursor": False,
        "limit": False,
    },
    # Partner feed health (README "Partner feed health"); {partner}: any case.
    "/partners": {"at": False},
    "/partners/{partner}": {"at": False},
    # README "Card ownership": copies of one event with different phones
    "/phone_conflicts": {"since": False, "cursor": False, "limit": False},
}

ERROR_BODY = (
    '{"error": {"code": "$context.error.responseType", "message": $context.error.messageString}}'
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        handler: lambda_.IFunction,
        network: Network,
    ) -> None:
        super().__init__(scope, construct_id)
        stage_name = settings.get_str("api", "stageName")
        create_cloudwatch_role = settings.get_bool("api", "createCloudWatchRole")
        callers = settings.api_callers
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention_days(settings.get_int("logRetentionDays")),
            removal_policy=RemovalPolicy.DESTROY
            if removal_policy(settings) == RemovalPolicy.DESTROY
            else RemovalPolicy.RETAIN,
        )

        policy, endpoint_config = self._build_endpoint(settings, network, callers)
        self._build_rest_api(settings, stage_name, policy, endpoint_config, create_cloudwatch_role)
        self._build_methods(handler)
        self._build_usage_plans(settings, callers)
        self._build_invoke_policy(stage_name)
        self._build_waf(settings)
        self._acknowledge(stage_name, create_cloudwatch_role)
        CfnOutput(Stack.of(self), "ApiUrl", value=self.rest_api.url)
        CfnOutput(Stack.of(self), "InvokePolicyArn", value=self.invoke_policy.managed_policy_arn)

    def _build_endpoint(
        self, settings: Settings, network: Network, callers: list[Caller]
    ) -> tuple[iam.PolicyDocument, apigw.EndpointConfiguration]:
        """Resource policy (caller allow-list; VPC endpoint only when private) and endpoint."""
        private = settings.get_str("api", "endpointType") == "private"
        endpoint_config: apigw.EndpointConfiguration
        self.vpc_endpoint: ec2.InterfaceVpcEndpoint | None = None
        statements = caller_statements(callers, settings.void_callers)
        if private:
            existing = network.endpoints.get("execute-api")
            if existing is None:
                # Callers inside the VPC's address range (peered/VPN networks: add CIDRs in
                # api.privateCallerCidrs) reach the API through this endpoint.
                sg = network.security_group("ApiEndpointSg", "execute-api endpoint (private API)")
                cidrs = settings.get_optional("api", "privateCallerCidrs") or [
                    settings.get_str("network", "cidr")
                ]
                for cidr in cidrs:
                    sg.add_ingress_rule(
                        ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "private API callers"
                    )
                existing = network.vpc.add_interface_endpoint(
                    "Endpoint-execute-api",
                    service=ec2.InterfaceVpcEndpointAwsService.APIGATEWAY,
                    subnets=network.app_subnets,
                    security_groups=[sg],
                    private_dns_enabled=True,
                    open=False,
                )
            self.vpc_endpoint = existing
            endpoint_config = apigw.EndpointConfiguration(
                types=[apigw.EndpointType.PRIVATE], vpc_endpoints=[self.vpc_endpoint]
            )
            statements.append(
                iam.PolicyStatement(
                    sid="OnlyThroughVpcEndpoint",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["execute-api:Invoke"],
                    resources=["execute-api:/*"],
                    conditions={
                        "StringNotEquals": {"aws:SourceVpce": self.vpc_endpoint.vpc_endpoint_id}
                    },
                )
            )
        else:
            endpoint_config = apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL])
        return iam.PolicyDocument(statements=statements), endpoint_config

    def _build_rest_api(
        self,
        settings: Settings,
        stage_name: str,
        policy: iam.PolicyDocument,
        endpoint_config: apigw.EndpointConfiguration,
        create_cloudwatch_role: bool,
    ) -> None:
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{settings.resource_prefix}-api",
            description="cardstatus: card delivery status for internal callers (IAM auth)",
            endpoint_configuration=endpoint_config,
            policy=policy,
            # Off by default: AWS::ApiGateway::Account sets the region-wide logging role of every
            # API in the account (docs/DEPLOY.md: `-c createApiCloudWatchRole=true` once).
            cloud_watch_role=create_cloudwatch_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN
            if create_cloudwatch_role
            else None,
            disable_execute_api_endpoint=False,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                throttling_rate_limit=settings.get_int("api", "throttleRateLimit", minimum=1),
                throttling_burst_limit=settings.get_int("api", "throttleBurstLimit", minimum=1),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                # API Gateway's X-Ray segment records the full URL, ?user_phone=... included
                # (docs/DEPLOY.md "No phone in traces"). The api function's active tracing
                # still draws the service map.
                tracing_enabled=False,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(_json(ACCESS_LOG_FIELDS)),
            ),
            default_method_options=apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.IAM, api_key_required=True
            ),
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
        )

    def _build_methods(self, handler: lambda_.IFunction) -> None:
        validator = self.rest_api.add_request_validator(
            "QueryValidator",
            request_validator_name="query-parameters",
            validate_request_parameters=True,
            # GET-only API: no body model is attached, so this only satisfies APIG2 rule shape.
            validate_request_body=True,
        )
        # No test-invoke permission: TestInvokeMethod needs only apigateway:POST and skips the
        # method's IAM authorisation, the resource policy, WAF, throttling and the access log.
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        for path, query in ROUTES.items():
            resource = self.rest_api.root.resource_for_path(path)
            params = {f"method.request.querystring.{k}": req for k, req in query.items()}
            if "{card_id}" in path:
                params["method.request.path.card_id"] = True
            resource.add_method(
                "GET",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                api_key_required=True,
                request_parameters=params or None,
                request_validator=validator if params else None,
            )

        self.files_resource = self._add_ops_methods(integration, validator)

        # API Gateway's own errors (403 missing signature, 429 throttled, 400 validation)
        # in the same JSON shape as the function's errors.
        for response_type in (apigw.ResponseType.DEFAULT_4_XX, apigw.ResponseType.DEFAULT_5_XX):
            self.rest_api.add_gateway_response(
                f"Gateway{response_type.response_type}",
                type=response_type,
                templates={"application/json": ERROR_BODY},
            )

    def _add_ops_methods(
        self, integration: apigw.LambdaIntegration, validator: apigw.RequestValidator
    ) -> apigw.Resource:
        """The operations routes, POST /cards/search, and a HEAD twin of every GET (the function
        answers HEAD as GET without the body), all with IAM auth like the card routes.
        Returns the /files/{file_id} resource: POST /files/{file_id}/void goes under it, with
        its own function and its own IAM permission (not granted by `invoke_policy`)."""
        for path, query in OPS_ROUTES.items():
            resource = self.rest_api.root.resource_for_path(path)
            params = {f"method.request.querystring.{k}": req for k, req in query.items()}
            for name in ("file_id", "partner"):
                if f"{{{name}}}" in path:
                    params[f"method.request.path.{name}"] = True
            resource.add_method(
                "GET",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                api_key_required=True,
                request_parameters=params,
                request_validator=validator,
            )
        for path, query in {**ROUTES, **OPS_ROUTES}.items():
            resource = self.rest_api.root.resource_for_path(path)
            params = {f"method.request.querystring.{k}": req for k, req in query.items()}
            for name in ("card_id", "file_id", "partner"):
                if f"{{{name}}}" in path:
                    params[f"method.request.path.{name}"] = True
            resource.add_method(
                "HEAD",
                integration,
                authorization_type=apigw.AuthorizationType.IAM,
                api_key_required=True,
                request_parameters=params or None,
                request_validator=validator if params else None,
            )
        # The phone in a JSON body rather than the URL; the function validates the body (its
        # 400 names the field), so no gateway model.
        self.rest_api.root.resource_for_path("/cards/search").add_method(
            "POST",
            integration,
            authorization_type=apigw.AuthorizationType.IAM,
            api_key_required=True,
        )
        # POST /files/{file_id}/void: added by the void function's construct under this resource.
        return self.rest_api.root.resource_for_path("/files/{file_id}")

    def _grant_ops_invoke(self, stage_name: str) -> None:
        """Ordinary callers may also HEAD any route and POST /cards/search (a lookup); never
        POST /files/{file_id}/void."""
        self.invoke_policy.add_statements(
            iam.PolicyStatement(
                actions=["execute-api:Invoke"],
                resources=[
                    self.rest_api.arn_for_execute_api("HEAD", "/*", stage_name),
                    self.rest_api.arn_for_execute_api("POST", "/cards/search", stage_name),
                ],
            )
        )
        ack(
            self.invoke_policy,
            wildcard_finding(
                "arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{logical_id(self.rest_api)}>/{stage_name}/HEAD/*"
            ),
            "Grants HEAD on every route of this stage only: HEAD answers what GET answers, "
            "without the body.",
        )

    def _build_invoke_policy(self, stage_name: str) -> None:
        # Internal callers get this policy (or its statement) to sign requests.
        self.invoke_policy = iam.ManagedPolicy(
            self,
            "InvokePolicy",
            description="Call the cardstatus API with SigV4: GET, HEAD, POST /cards/search",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[self.rest_api.arn_for_execute_api("GET", "/*", stage_name)],
                )
            ],
        )

    def _build_waf(self, settings: Settings) -> None:
        # WAF: per-IP rate limit plus AWS managed known-bad-input and IP reputation rules.
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{settings.resource_prefix}-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=settings.get_int("api", "wafRateLimitPer5Minutes", minimum=10),
                        )
                    ),
                    visibility_config=_visibility("RateLimitPerIp"),
                ),
                _managed_rule("AWSManagedRulesAmazonIpReputationList", 1),
                _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 2),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.rest_api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )

    def _acknowledge(self, stage_name: str, create_cloudwatch_role: bool) -> None:
        ack(
            self.rest_api,
            "AwsSolutions-COG4",
            "Callers are internal AWS principals authorised with IAM (SigV4) on every method "
            "(README, section API); there are no end users, so no Cognito user pool.",
        )
        if create_cloudwatch_role:
            ack(
                self.rest_api,
                managed_policy_finding("service-role/AmazonAPIGatewayPushToCloudWatchLogs"),
                "Account-level role API Gateway needs to write execution/access logs; the AWS "
                "managed policy is the documented one for this service role.",
            )
        self._grant_ops_invoke(stage_name)
        ack(
            self.invoke_policy,
            wildcard_finding(
                "arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{logical_id(self.rest_api)}>/{stage_name}/GET/*"
            ),
            "Grants GET on every route of this stage only; every route is a read-only lookup.",
        )

    def _build_usage_plans(self, settings: Settings, callers: list[Caller]) -> None:
        """Per-caller throttling: one API key and usage plan per caller (api.callers).

        Why usage plans and not WAF: a WAF rate-based rule can only aggregate on what is in the
        request (IP, headers, query, ...), and a SigV4 request carries no stable caller identity
        there (the Authorization header changes with every signature, the session token with
        every credential refresh, long-term keys have none). A usage plan limits each key
        inside API Gateway, after IAM authorisation, with its own rate, burst and daily quota;
        the key says which caller's budget to charge, the resource policy says who may call.
        """
        stage = self.rest_api.deployment_stage
        self.api_keys: dict[str, apigw.IApiKey] = {}
        for caller in callers:
            key = apigw.ApiKey(
                self,
                f"Key-{caller.name}",
                api_key_name=f"{settings.resource_prefix}-{caller.name}",
                description=f"cardstatus {settings.env_name}: API key of caller {caller.name}",
                enabled=True,
            )
            plan = self.rest_api.add_usage_plan(
                f"Plan-{caller.name}",
                name=f"{settings.resource_prefix}-{caller.name}",
                description=f"Throttling and daily quota of caller {caller.name}",
                throttle=apigw.ThrottleSettings(
                    rate_limit=caller.rate_limit, burst_limit=caller.burst_limit
                ),
                quota=apigw.QuotaSettings(limit=caller.quota_per_day, period=apigw.Period.DAY),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=stage)],
            )
            plan.add_api_key(key)
            self.api_keys[caller.name] = key
            CfnOutput(
                Stack.of(self),
                f"ApiKeyId{caller.name.title().replace('-', '').replace('_', '')}",
                value=key.key_id,
                description=f"API key id of caller {caller.name} (value: aws apigateway "
                "get-api-key --include-value --api-key <id>)",
            )


# The void route (functions/void, infra/void.py): a permission of its own.
VOID_PATH = "/files/{file_id}/void"
VOID_RESOURCE = "execute-api:/*/POST/files/*/void"


def caller_statements(
    callers: list[Caller], void_callers: tuple[str, ...] = ()
) -> list[iam.PolicyStatement]:
    """Resource-policy statements: Allow the listed principals, Deny every other one.

    The Allow names the callers' accounts as principals (an IAM identity policy must still
    allow execute-api:Invoke) and narrows them with aws:PrincipalArn, so a pattern may name a
    role that does not exist yet or use wildcards. The explicit Deny binds same-account
    principals too, whatever their identity policies say.

    The void method (POST /files/{file_id}/void) admits only `void_callers` (api.voidCallers):
    an API caller is denied there even with execute-api:* in its identity policy, and a void
    caller is admitted to that method alone by this policy (reads need api.callers).
    """
    patterns = sorted({p for c in callers for p in c.principals})
    voiders = sorted(set(void_callers))
    arns = [_expand(p) for p in patterns]
    void_arns = [_expand(p) for p in voiders]
    statements = [
        iam.PolicyStatement(
            sid="ListedCallers",
            principals=_account_principals(patterns),
            actions=["execute-api:Invoke"],
            resources=["execute-api:/*"],
            conditions={"ArnLike": {"aws:PrincipalArn": arns}},
        ),
        iam.PolicyStatement(
            sid="DenyEveryoneElse",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["execute-api:Invoke"],
            resources=["execute-api:/*"],
            conditions={"ArnNotLike": {"aws:PrincipalArn": sorted(set(arns + void_arns))}},
        ),
        iam.PolicyStatement(
            sid="OnlyVoidCallersVoid",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["execute-api:Invoke"],
            resources=[VOID_RESOURCE],
            # No void callers (prod default): nobody voids through the API.
            conditions={"ArnNotLike": {"aws:PrincipalArn": void_arns}} if void_arns else None,
        ),
    ]
    if void_arns:
        statements.insert(
            1,
            iam.PolicyStatement(
                sid="VoidCallers",
                principals=_account_principals(voiders),
                actions=["execute-api:Invoke"],
                resources=[VOID_RESOURCE],
                conditions={"ArnLike": {"aws:PrincipalArn": void_arns}},
            ),
        )
    return statements


def _account_principals(patterns: list[str]) -> list[iam.IPrincipal]:
    accounts = sorted({principal_account(p) for p in patterns})
    return [
        iam.AccountRootPrincipal() if account == ACCOUNT else iam.AccountPrincipal(account)
        for account in accounts
    ]


def _expand(pattern: str) -> str:
    return pattern.replace(ACCOUNT, Aws.ACCOUNT_ID).replace(PARTITION, Aws.PARTITION)


def _json(fields: dict[str, str]) -> str:
    parts = [f'"{k}":"{v}"' for k, v in fields.items()]
    return "{" + ",".join(parts) + "}"


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True,
        metric_name=name,
        # Sampled requests keep full URIs (query strings carry phone numbers): off.
        sampled_requests_enabled=False,
    )


def _managed_rule(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=name
            )
        ),
        visibility_config=_visibility(name),
    )

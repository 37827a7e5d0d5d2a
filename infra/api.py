"""REST API: IAM (SigV4) on every method, a resource policy that admits only the callers listed
in cdk.json (api.callers), one API key + usage plan per caller (per-caller throttling and
quota), query-parameter validation, stage throttling, WAFv2 rate limiting, access logs without
query strings, data tracing and API Gateway X-Ray tracing off (the URL carries the phone; the
function's own tracing stays), no test-invoke permissions; optionally a private endpoint
reachable only through an execute-api VPC endpoint (`-c apiEndpointType=private`)."""

from __future__ import annotations

import re

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
from infra.settings import (
    ACCOUNT,
    OPS_KEY_NAME,
    PARTITION,
    Caller,
    Settings,
    principal_account,
)
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
    "/files": {
        "partner": False,
        "outcome": False,
        "since": False,
        "limit": False,
        "cursor": False,
        "has_rejects": False,
    },
    "/files/{file_id}": {},
    "/files/{file_id}/rejects": {"cursor": False, "limit": False},
    # files <-> cards, void preview, rejects as CSV (functions/api/file_routes.py)
    "/files/{file_id}/cards": {"action": False, "cursor": False, "limit": False},
    "/files/{file_id}/void_preview": {"cursor": False, "limit": False},
    "/files/{file_id}/rejects.csv": {},
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
        self._build_usage_plans(settings, [*callers, _ops_caller(settings)])
        self._build_invoke_policy(stage_name)
        if settings.get_bool("api", "waf"):
            self._build_waf(settings)
        else:
            # dev (api.waf false in cdk.json): the web ACL and its rules cost ~$8/month idle
            # (`make cost`); every method still requires SigV4 from an allow-listed caller,
            # with stage throttling and usage-plan quotas. prod keeps WAF.
            ack(
                self.rest_api.deployment_stage,
                "AwsSolutions-APIG3",
                f"{settings.env_name}: no WAF to save its fixed cost; IAM-only methods, stage "
                "throttling and per-caller quotas remain; prod sets api.waf=true.",
            )
        self._acknowledge(stage_name, create_cloudwatch_role)
        CfnOutput(Stack.of(self), "ApiUrl", value=self.rest_api.url)
        CfnOutput(Stack.of(self), "InvokePolicyArn", value=self.invoke_policy.managed_policy_arn)
        CfnOutput(Stack.of(self), "OpsReadPolicyArn", value=self.ops_read_policy.managed_policy_arn)

    def _build_endpoint(
        self, settings: Settings, network: Network, callers: list[Caller]
    ) -> tuple[iam.PolicyDocument, apigw.EndpointConfiguration]:
        """Resource policy (caller allow-list; VPC endpoint only when private) and endpoint."""
        private = settings.get_str("api", "endpointType") == "private"
        endpoint_config: apigw.EndpointConfiguration
        self.vpc_endpoint: ec2.InterfaceVpcEndpoint | None = None
        statements = caller_statements(
            callers, settings.void_callers, settings.ops_callers, settings.privacy_callers
        )
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

    def _role_arns(self, role: str, stage_name: str) -> list[str]:
        """Identity-policy resources of one caller role: its resource-policy patterns as
        full execute-api ARNs of this API and stage."""
        out = []
        for resource in ROLE_RESOURCES[role] + ROLE_RESOURCES["health"]:
            method, path = resource.removeprefix("execute-api:/*/").split("/", 1)
            out.append(self.rest_api.arn_for_execute_api(method, f"/{path}", stage_name))
        return out

    def _build_invoke_policy(self, stage_name: str) -> None:
        """Identity policies to attach to each role's principals: InvokePolicy (api.callers:
        card lookups) and OpsReadPolicy (api.opsCallers: the ops read routes). The void's own
        VoidPolicy is in infra/void.py."""
        self.invoke_policy = iam.ManagedPolicy(
            self,
            "InvokePolicy",
            description="Look up cards with SigV4 (api.callers): GET/HEAD /get_card_status, "
            "/cards, /cards/{card_id}, POST /cards/search, GET/HEAD /health",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=self._role_arns("lookup", stage_name),
                )
            ],
        )
        self.ops_read_policy = iam.ManagedPolicy(
            self,
            "OpsReadPolicy",
            description="Read the cardstatus ops routes with SigV4 (api.opsCallers): files, "
            "rejects, stuck cards, partners, health",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=self._role_arns("ops", stage_name),
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
        api_arn = (
            "arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
            f"<{logical_id(self.rest_api)}>/{stage_name}/"
        )
        for policy, role in ((self.invoke_policy, "lookup"), (self.ops_read_policy, "ops")):
            for resource in ROLE_RESOURCES[role]:
                if resource.endswith("*"):
                    ack(
                        policy,
                        wildcard_finding(api_arn + resource.removeprefix("execute-api:/*/")),
                        "The path parameter (card id, file id, partner) of this role's read "
                        "routes on this stage only (README 'Caller roles').",
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

# Erasure on request (functions/void, infra/void.py): a permission of its own, like the void.
PRIVACY_PATH = "/privacy/erase"
PRIVACY_RESOURCE = "execute-api:/*/POST/privacy/erase"

# Caller roles (README "Caller roles"; SPEC 5, 12-06). Each method of the API belongs to one
# role; the resource policy admits a role's list (cdk.json key) to its methods only, with an
# explicit Deny for every principal outside that list. `route_role` classifies a method and
# tests/infra/test_infra_caller_roles.py checks that every method of the template has a role.
#   lookup: api.callers      card lookups (GET/HEAD /get_card_status, /cards, /cards/{id},
#                            POST /cards/search)
#   ops:    api.opsCallers   every other read route: /files*, /stuck_cards, /partners*,
#                            /phone_conflicts
#   void:   api.voidCallers  POST /files/{file_id}/void
#   privacy: api.privacyCallers  POST /privacy/erase
#   health: api.callers + api.opsCallers  (GET/HEAD /health: a database ping)
LOOKUP_PATHS = ("/get_card_status", "/cards", "/cards/*")
LOOKUP_POSTS = ("/cards/search",)
OPS_PATHS = (
    "/files",
    "/files/*",
    "/stuck_cards",
    "/partners",
    "/partners/*",
    "/phone_conflicts",
)
HEALTH_PATHS = ("/health",)
READ_METHODS = ("GET", "HEAD")
ROLE_KEYS = {
    "lookup": "api.callers",
    "ops": "api.opsCallers",
    "void": "api.voidCallers",
    "privacy": "api.privacyCallers",
    "health": "api.callers + api.opsCallers",
}


def _resources(methods: tuple[str, ...], paths: tuple[str, ...]) -> list[str]:
    return [f"execute-api:/*/{m}{p}" for p in paths for m in methods]


ROLE_RESOURCES: dict[str, list[str]] = {
    "lookup": _resources(READ_METHODS, LOOKUP_PATHS) + _resources(("POST",), LOOKUP_POSTS),
    "ops": _resources(READ_METHODS, OPS_PATHS),
    "void": [VOID_RESOURCE],
    "privacy": [PRIVACY_RESOURCE],
    "health": _resources(READ_METHODS, HEALTH_PATHS),
}


def _matches(pattern: str, path: str) -> bool:
    """execute-api resource matching: `*` matches any characters, `/` included."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), path) is not None


def route_role(method: str, path: str) -> str | None:
    """The caller role of a method of this API (path as in the resource tree, `{x}` for a
    path parameter), or None when no role admits it (a route nobody could call)."""
    concrete = re.sub(r"\{[^}]+\}", "x", path)
    wanted = f"execute-api:/stage/{method.upper()}{concrete}"
    found = [
        role
        for role, resources in ROLE_RESOURCES.items()
        if any(_matches(r.replace("/*/", "/stage/", 1), wanted) for r in resources)
    ]
    # /files/* (ops, GET) never matches POST .../void; a path in two roles is a mistake.
    return found[0] if len(found) == 1 else None


def caller_statements(
    callers: list[Caller],
    void_callers: tuple[str, ...] = (),
    ops_callers: tuple[str, ...] = (),
    privacy_callers: tuple[str, ...] = (),
) -> list[iam.PolicyStatement]:
    """Resource-policy statements: each role's list is allowed its methods, and denied
    (explicitly) everything else; everyone on no list is denied everything.

    The Allows name the listed principals' accounts and narrow them with aws:PrincipalArn,
    so a pattern may name a role that does not exist yet or use wildcards (an IAM identity
    policy must still allow execute-api:Invoke: InvokePolicy, OpsReadPolicy, VoidPolicy).
    The explicit Denies bind same-account principals too, whatever their identity policies
    say: a void caller with execute-api:* reads nothing unless it is also on api.callers /
    api.opsCallers, an API caller cannot read the ops routes, an ops reader cannot look up
    cards. An empty list (prod default for voidCallers/opsCallers) admits nobody to its
    methods.
    """
    lists = {
        "lookup": sorted({p for c in callers for p in c.principals}),
        "ops": sorted(set(ops_callers)),
        "void": sorted(set(void_callers)),
        "privacy": sorted(set(privacy_callers)),
    }
    lists["health"] = sorted(set(lists["lookup"]) | set(lists["ops"]))
    arns = {role: [_expand(p) for p in patterns] for role, patterns in lists.items()}
    everyone = sorted({a for role in ("lookup", "ops", "void", "privacy") for a in arns[role]})
    sids = {
        "lookup": ("ListedCallers", "OnlyCallersLookUpCards"),
        "ops": ("OpsCallers", "OnlyOpsCallersReadOps"),
        "void": ("VoidCallers", "OnlyVoidCallersVoid"),
        "privacy": ("PrivacyCallers", "OnlyPrivacyCallersErase"),
        "health": ("HealthCallers", "OnlyReadersCheckHealth"),
    }
    allows = [
        iam.PolicyStatement(
            sid=sids[role][0],
            principals=_account_principals(lists[role]),
            actions=["execute-api:Invoke"],
            resources=ROLE_RESOURCES[role],
            conditions={"ArnLike": {"aws:PrincipalArn": arns[role]}},
        )
        for role in ("lookup", "ops", "void", "privacy", "health")
        if lists[role]
    ]
    denies = [
        iam.PolicyStatement(
            sid="DenyEveryoneElse",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["execute-api:Invoke"],
            resources=["execute-api:/*"],
            conditions={"ArnNotLike": {"aws:PrincipalArn": everyone}} if everyone else None,
        )
    ]
    denies += [
        iam.PolicyStatement(
            sid=sids[role][1],
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["execute-api:Invoke"],
            resources=ROLE_RESOURCES[role],
            # An empty list: nobody is admitted to these methods.
            conditions={"ArnNotLike": {"aws:PrincipalArn": arns[role]}} if arns[role] else None,
        )
        for role in ("lookup", "ops", "void", "privacy", "health")
    ]
    return allows + denies


def _ops_caller(settings: Settings) -> Caller:
    """The ops readers' API key and usage plan (api.callerDefaults limits): the console proxy
    sends it (`cardstatus console`); the resource policy, not the key, decides who reads."""
    defaults = settings.get("api", "callerDefaults")
    return Caller(
        name=OPS_KEY_NAME,
        principals=settings.ops_callers,
        rate_limit=int(defaults["rateLimit"]),
        burst_limit=int(defaults["burstLimit"]),
        quota_per_day=int(defaults["quotaPerDay"]),
    )


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

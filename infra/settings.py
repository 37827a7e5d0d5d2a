"""Environment settings from cdk.json context.

Effective settings for environment E = deep merge of ``cardstatus:shared`` with
``cardstatus:environments[E]``; E comes from ``-c env=<name>`` (default ``dev``).
``cardstatus:shared`` is also read by the local runner (queue/bucket settings), so
keep queue and bucket keys there. See docs/DEPLOY.md for every key.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs import Node

from cardstatus import dbroles

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"
SHARED_KEY = "cardstatus:shared"
ENVIRONMENTS_KEY = "cardstatus:environments"

# Command-line switches (`-c name=value`) over cdk.json keys, for the settings one flips per
# deploy: `-c apiEndpointType=private`, `-c createApiCloudWatchRole=true`.
CONTEXT_FLAGS: dict[str, tuple[str, str]] = {
    "apiEndpointType": ("api", "endpointType"),
    "createApiCloudWatchRole": ("api", "createCloudWatchRole"),
    "database": ("database", "engine"),  # -c database=aurora (infra/aurora.py)
}

# The API key and usage plan of the ops readers (api.opsCallers); no api.callers entry may
# take this name.
OPS_KEY_NAME = "ops"

# Principal ARN patterns in cdk.json may use these placeholders (the stack is env-agnostic).
ACCOUNT = "{account}"
PARTITION = "{partition}"
_PRINCIPAL_ARN = re.compile(
    r"^arn:(?:\{partition\}|aws(?:-[a-z]+)*):iam::(?P<account>\{account\}|\d{12}):(?P<rest>.+)$"
)


class SettingsError(ValueError):
    """cdk.json context is missing a key or holds an invalid value."""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def cdk_json_context() -> dict[str, Any]:
    """The context block of cdk.json (for tests and tools that build an App themselves)."""
    return dict(json.loads(CDK_JSON.read_text("utf-8"))["context"])


def _ctx_json(node: Node, key: str) -> Any:
    value = node.try_get_context(key)
    # `-c key='{"a":1}'` on the command line arrives as a string.
    if isinstance(value, str):
        value = json.loads(value)
    return value


# Functions whose SnapStart flag may be on: the api (latency-sensitive, behind an alias). Not
# ingest (SQS-driven, latency-insensitive: restores and snapshot caching are billed for Python)
# nor migrate (runs once per deployment). docs/DEPLOY.md "SnapStart".
SNAP_START_FUNCTIONS = frozenset({"api"})


# Functions that log in as a role dbroles.FUNCTION_OF_ROLE gives to another function, and the
# seconds they keep between that role's statement_timeout and their own timeout: the audit sink
# (infra/audit.py) appends the lookups' audit rows as the api role.
SHARED_ROLE_FUNCTIONS: dict[str, tuple[str, int]] = {"audit": (dbroles.API, 2)}


@dataclass(frozen=True)
class FunctionSettings:
    timeout_s: int
    memory_mb: int
    reserved_concurrency: int | None
    # Lambda SnapStart on published versions, behind an alias (docs/DEPLOY.md "SnapStart").
    snap_start: bool = False


@dataclass(frozen=True)
class Caller:
    """One API caller: IAM principals (ARN patterns) sharing one API key and usage plan."""

    name: str
    principals: tuple[str, ...]
    rate_limit: int
    burst_limit: int
    quota_per_day: int


@dataclass(frozen=True)
class PartnerTrust:
    """Who may assume a partner's upload role: principal ARN patterns (+ ExternalId)."""

    principals: tuple[str, ...]
    external_id: str | None


def principal_account(pattern: str) -> str:
    """The account part of a principal ARN pattern: 12 digits or ACCOUNT."""
    match = _PRINCIPAL_ARN.match(pattern)
    assert match, pattern
    return match.group("account")


# A role or user name pattern must fix at least this many characters before its first
# wildcard: `role/*`, `user/?*` or `role/a*` mean (nearly) every role or user of the account.
MIN_FIXED_NAME_CHARS = 3
_WILDCARDS = re.compile(r"[*?]")


def whole_account_reason(rest: str) -> str | None:
    """Why the part after `iam::<account>:` of a principal pattern admits (nearly) a whole
    account (the root, `*`, anything not a role or user, `role/*`, `user/*`, ...), else None."""
    if rest in ("root", "*") or not rest.startswith(("role/", "user/")):
        return "names a whole account"
    name = rest.split("/", 1)[1]
    fixed = _WILDCARDS.split(name, maxsplit=1)[0].replace("/", "")
    if _WILDCARDS.search(name) and len(fixed) < MIN_FIXED_NAME_CHARS:
        kind = rest.split("/", 1)[0]
        return (
            f"matches every {kind} of the account (fix at least {MIN_FIXED_NAME_CHARS} "
            "characters of the name before a wildcard)"
        )
    return None


def _principal_patterns(value: Any, where: str, *, broad_ok: bool) -> tuple[str, ...]:
    """The ARN patterns of one cdk.json list; `where` is its cdk.json key (named in errors).
    broad_ok=False (prod, and partner trust everywhere) refuses whole-account patterns."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise SettingsError(f"{where} must be a principal ARN or a non-empty list of them")
    for arn in items:
        match = _PRINCIPAL_ARN.match(arn)
        if not match:
            raise SettingsError(
                f"{where}: {arn!r} is not an IAM principal ARN pattern "
                "(arn:{partition}:iam::{account}:role/NAME, or a 12-digit account)"
            )
        reason = whole_account_reason(match.group("rest"))
        if not broad_ok and reason:
            raise SettingsError(
                f"cdk.json {where}: {arn!r} trusts a whole account ({reason}); name roles or "
                "users (arn:...:role/NAME, a wildcard only after a fixed name prefix)"
            )
    return tuple(items)


@dataclass(frozen=True)
class Settings:
    env_name: str
    raw: dict[str, Any]

    # -- generic access -----------------------------------------------------------------
    def get(self, *path: str) -> Any:
        node: Any = self.raw
        for part in path:
            if not isinstance(node, dict) or part not in node:
                raise SettingsError(f"cdk.json context is missing {'.'.join(path)}")
            node = node[part]
        return node

    def get_optional(self, *path: str) -> Any:
        """A value that may be null/absent (CDK drops null context values)."""
        try:
            return self.get(*path)
        except SettingsError:
            return None

    def get_int(self, *path: str, minimum: int | None = None) -> int:
        value = self.get(*path)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{'.'.join(path)} must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise SettingsError(f"{'.'.join(path)} must be >= {minimum}, got {value}")
        return value

    def get_bool(self, *path: str) -> bool:
        value = self.get(*path)
        if not isinstance(value, bool):
            raise SettingsError(f"{'.'.join(path)} must be true or false, got {value!r}")
        return value

    def get_str(self, *path: str) -> str:
        value = self.get(*path)
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{'.'.join(path)} must be a non-empty string, got {value!r}")
        return value

    # -- typed views -------------------------------------------------------------------
    @property
    def resource_prefix(self) -> str:
        return f"cardstatus-{self.env_name}"

    @property
    def is_production(self) -> bool:
        return self.env_name == "prod"

    @property
    def incoming_prefix(self) -> str:
        return self.get_str("bucket", "incomingPrefix")

    @property
    def reports_prefix(self) -> str:
        return self.get_str("bucket", "reportsPrefix")

    def function(self, name: str) -> FunctionSettings:
        reserved = self.get_optional("functions", name, "reservedConcurrency")
        return FunctionSettings(
            timeout_s=self.get_int("functions", name, "timeoutSeconds", minimum=1),
            memory_mb=self.get_int("functions", name, "memoryMb", minimum=128),
            reserved_concurrency=int(reserved) if reserved is not None else None,
            snap_start=self._snap_start(name),
        )

    def _snap_start(self, name: str) -> bool:
        value = self.get_optional("functions", name, "snapStart")
        if value is None:
            return False
        if not isinstance(value, bool):
            raise SettingsError(f"functions.{name}.snapStart must be true or false, got {value!r}")
        if value and name not in SNAP_START_FUNCTIONS:
            raise SettingsError(
                f"functions.{name}.snapStart: SnapStart is wired for "
                f"{sorted(SNAP_START_FUNCTIONS)} "
                'only (docs/DEPLOY.md "SnapStart" says why)'
            )
        return value

    @property
    def partners(self) -> dict[str, dict[str, Any]]:
        value = self.get("partners")
        if not isinstance(value, dict):
            raise SettingsError("partners must be an object {name: {timezone, day_first, ...}}")
        return {str(k): dict(v or {}) for k, v in value.items()}

    @property
    def upload_partners(self) -> list[str]:
        """Partners that get an upload role (every configured partner but `default`)."""
        return sorted(p for p in self.partners if p != "default")

    @property
    def api_callers(self) -> list[Caller]:
        """api.callers: {name: {principals, rateLimit?, burstLimit?, quotaPerDay?}}.

        Only these principals may call the API (resource policy), each name with its own API
        key and usage plan (per-caller throttling and quota). Prod must list them; elsewhere an
        empty list means every IAM principal of the account, under one key.
        """
        raw = self.get_optional("api", "callers") or {}
        if not isinstance(raw, dict):
            raise SettingsError("api.callers must be an object {name: {principals: [...]}}")
        defaults = self.get("api", "callerDefaults")
        if not raw:
            if self.is_production:
                raise SettingsError(
                    f"api.callers is empty for {self.env_name!r}: list every principal allowed to "
                    "call the API (cdk.json cardstatus:environments.prod.api.callers, see "
                    "docs/DEPLOY.md 'Who may call the API')"
                )
            raw = {"account": {"principals": [f"arn:{PARTITION}:iam::{ACCOUNT}:*"]}}
        callers = []
        for name, spec in sorted(raw.items()):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}", name):
                raise SettingsError(f"api.callers: name {name!r} must be [A-Za-z0-9_-], <= 63")
            if name == OPS_KEY_NAME:
                raise SettingsError(
                    f"api.callers: the name {OPS_KEY_NAME!r} is the ops readers' API key "
                    "(api.opsCallers); choose another"
                )
            spec = {**defaults, **(spec or {})}
            where = f"api.callers.{name}.principals"
            principals = _principal_patterns(
                spec.get("principals"), where, broad_ok=not self.is_production
            )
            limits = {}
            for key in ("rateLimit", "burstLimit", "quotaPerDay"):
                value = spec.get(key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise SettingsError(f"api.callers.{name}.{key} must be a positive integer")
                limits[key] = value
            callers.append(
                Caller(
                    name=name,
                    principals=principals,
                    rate_limit=limits["rateLimit"],
                    burst_limit=limits["burstLimit"],
                    quota_per_day=limits["quotaPerDay"],
                )
            )
        return callers

    @property
    def void_callers(self) -> tuple[str, ...]:
        """api.voidCallers: principal ARN patterns that may call POST /files/{file_id}/void.

        A permission of its own (README "Voiding a file"): the resource policy admits only these
        principals to the void method, and they still need the VoidPolicy (identity policy).
        Empty: in prod nobody may void through the API; elsewhere every principal of the
        account that is given the VoidPolicy.
        """
        raw = self.get_optional("api", "voidCallers") or []
        if not raw:
            return () if self.is_production else (f"arn:{PARTITION}:iam::{ACCOUNT}:*",)
        return _principal_patterns(raw, "api.voidCallers", broad_ok=not self.is_production)

    @property
    def privacy_callers(self) -> tuple[str, ...]:
        """api.privacyCallers: principal ARN patterns that may call POST /privacy/erase.

        A permission of its own, like the void (README "Privacy"): the resource policy admits
        only these principals, and they still need the PrivacyPolicy (identity policy). Empty:
        in prod nobody may erase through the API; elsewhere every principal of the account that
        is given the PrivacyPolicy.
        """
        raw = self.get_optional("api", "privacyCallers") or []
        if not raw:
            return () if self.is_production else (f"arn:{PARTITION}:iam::{ACCOUNT}:*",)
        return _principal_patterns(raw, "api.privacyCallers", broad_ok=not self.is_production)

    @property
    def ops_callers(self) -> tuple[str, ...]:
        """api.opsCallers: principal ARN patterns that may read the operations routes (every
        GET/HEAD that is not a card lookup: /files*, /stuck_cards, /partners*, ...).

        Separate from api.callers (card lookups) and api.voidCallers (README "Caller roles"):
        the resource policy admits only these principals to the ops routes. Empty: in prod
        nobody reads them through the API; elsewhere every principal of the account.
        """
        raw = self.get_optional("api", "opsCallers") or []
        if not raw:
            return () if self.is_production else (f"arn:{PARTITION}:iam::{ACCOUNT}:*",)
        return _principal_patterns(raw, "api.opsCallers", broad_ok=not self.is_production)

    @property
    def lookup_budget(self) -> tuple[int, int]:
        """(api.lookupMismatchBudget, api.lookupBudgetWindowSeconds): how many card-id + phone
        lookups that do not match one caller may make per window before 429."""
        return (
            self.get_int("api", "lookupMismatchBudget", minimum=1),
            self.get_int("api", "lookupBudgetWindowSeconds", minimum=60),
        )

    @property
    def partner_trust(self) -> dict[str, PartnerTrust]:
        """partnerPrincipals: {partner: {principals: [...], externalId?}} for every upload partner.

        Required for every partner (no fallback to the account root). A principal in another
        account needs an externalId (confused-deputy protection for the partner's side).
        """
        raw = self.get_optional("partnerPrincipals") or {}
        if not isinstance(raw, dict):
            raise SettingsError("partnerPrincipals must be an object {partner: {principals}}")
        trust: dict[str, PartnerTrust] = {}
        missing = [p for p in self.upload_partners if p not in raw]
        if missing:
            raise SettingsError(
                f"partnerPrincipals has no principal for partner(s) {missing} in "
                f"{self.env_name!r}: name the role(s) each partner uploads with (and an "
                "externalId for another account), see docs/DEPLOY.md 'Partner principals'"
            )
        for partner in self.upload_partners:
            spec = raw[partner]
            if isinstance(spec, (str, list)):
                spec = {"principals": spec}
            where = f"partnerPrincipals.{partner}"
            principals = _principal_patterns(
                spec.get("principals"), f"{where}.principals", broad_ok=False
            )
            external_id = spec.get("externalId")
            if external_id is not None and (
                not isinstance(external_id, str)
                or not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", external_id)
            ):
                raise SettingsError(f"{where}.externalId must be 2-1224 characters [\\w+=,.@:/-]")
            cross_account = any(principal_account(p) != ACCOUNT for p in principals)
            if cross_account and not external_id:
                raise SettingsError(
                    f"{where}: a principal in another account needs an externalId "
                    "(sts:ExternalId, agreed with the partner)"
                )
            trust[partner] = PartnerTrust(principals=principals, external_id=external_id)
        return trust

    @property
    def alarm_email(self) -> str | None:
        value = self.get_optional("alarms", "email")
        return str(value) if value else None

    def validate(self) -> None:
        """Cross-field rules that CloudFormation would only reject at deploy time (or never)."""
        ingest = self.function("ingest")
        visibility = self.get_int("queue", "visibilityTimeoutSeconds")
        if visibility < 6 * ingest.timeout_s:
            raise SettingsError(
                f"queue.visibilityTimeoutSeconds ({visibility}) must be >= 6 x the ingest "
                f"timeout ({ingest.timeout_s} s) so a message is not redelivered mid-file"
            )
        if visibility > 43200:
            raise SettingsError("queue.visibilityTimeoutSeconds must be <= 43200 (12 h)")
        self.get_int("queue", "maxReceiveCount", minimum=5)
        if not 2 <= self.get_int("queue", "maximumConcurrency") <= 1000:
            raise SettingsError("queue.maximumConcurrency must be between 2 and 1000")
        if not 1 <= self.get_int("queue", "batchSize") <= 10:
            raise SettingsError("queue.batchSize must be between 1 and 10 (standard queue)")
        if self.get_optional("bucket", "csvSuffixes") is not None:
            raise SettingsError(
                "bucket.csvSuffixes is no longer a setting: every object created under "
                "bucket.incomingPrefix is queued for ingestion (SPEC 12-01: each gets a report; "
                "files of a kind that is not ingested are rejected with the reason); remove it "
                "from cdk.json"
            )
        for prefix in (self.incoming_prefix, self.reports_prefix):
            if not prefix.endswith("/") or prefix.startswith("/"):
                raise SettingsError(
                    f"bucket prefix {prefix!r} must end with '/' and not start with it"
                )
        if self.incoming_prefix.startswith(self.reports_prefix) or self.reports_prefix.startswith(
            self.incoming_prefix
        ):
            raise SettingsError("incoming and reports prefixes must not overlap (ingest loop)")
        if self.get_str("removalPolicy") not in ("destroy", "retain", "snapshot"):
            raise SettingsError("removalPolicy must be destroy, retain or snapshot")
        if self.get_str("api", "endpointType") not in ("regional", "private"):
            raise SettingsError("api.endpointType must be regional or private")
        for name in self.partners:
            if not name or "/" in name:
                raise SettingsError(f"partner name {name!r} must be one S3 path segment")
        for name in ("ingest", "api", "migrate", "audit"):
            if self.function(name).timeout_s > 900:
                raise SettingsError(f"functions.{name}.timeoutSeconds must be <= 900")
        self._validate_statement_timeouts()
        self.api_callers  # noqa: B018 (validates)
        self.void_callers  # noqa: B018 (validates)
        self.privacy_callers  # noqa: B018 (validates)
        self.ops_callers  # noqa: B018 (validates)
        self.lookup_budget  # noqa: B018 (validates)
        self.partner_trust  # noqa: B018 (validates)

    def _validate_statement_timeouts(self) -> None:
        """Each database role's statement_timeout (cardstatus/dbroles.py, set by migration 0005)
        ends a statement before its function's timeout, with a margin (README "Limits")."""
        checks = [
            (f"role {role}", dbroles.statement_timeout_s(role), function, margin)
            for role, (function, margin) in dbroles.FUNCTION_OF_ROLE.items()
        ]
        for function, (role, margin) in SHARED_ROLE_FUNCTIONS.items():
            checks.append((f"role {role}", dbroles.statement_timeout_s(role), function, margin))
        function, margin = dbroles.MIGRATE_FUNCTION
        checks.append(("migrate", dbroles.MIGRATE_STATEMENT_TIMEOUT_MS / 1000, function, margin))
        for who, statement_s, function, margin in checks:
            if self.get_optional("functions", function) is None:
                continue  # no such function in this stack (yet)
            timeout = self.function(function).timeout_s
            if statement_s + margin > timeout:
                raise SettingsError(
                    f"functions.{function}.timeoutSeconds ({timeout}) must exceed the database "
                    f"statement_timeout of {who} ({statement_s:g} s) by at least {margin} s "
                    "(cardstatus/dbroles.py)"
                )


# -- example values prod must not ship (docs/DEPLOY.md "Values to replace") --------------------
# AWS documentation account ids (never a real account of yours).
EXAMPLE_ACCOUNTS = frozenset(
    {"111122223333", "123456789012", "444455556666", "555555555555", "777788889999",
     "999999999999", "000000000000", "210987654321"}
)  # fmt: skip
# Domains reserved for documentation (RFC 2606 / 6761).
_EXAMPLE_EMAIL = re.compile(r"@(?:[\w-]+\.)*(?:example\.(?:com|org|net)|[\w-]+\.example)$", re.I)
# The principals cdk.json ships for prod: names to replace with the real ones, never deployed.
EXAMPLE_PRINCIPALS = frozenset(
    {
        "arn:{partition}:iam::{account}:role/cardstatus-prod-support-*",
        "arn:{partition}:iam::{account}:role/cardstatus-prod-notifier",
        "arn:{partition}:iam::{account}:role/cardstatus-prod-ops-*",
        "arn:{partition}:iam::{account}:role/cardstatus-prod-speedy-sftp-bridge",
        "arn:aws:iam::111122223333:role/acme-cardstatus-uploader",
    }
)
EXAMPLE_EXTERNAL_IDS = frozenset({"cardstatus-prod-acme-7f3c9a"})


def example_values(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(cdk.json key, value) of every example value left in an environment's settings: the
    documentation accounts anywhere in a principal, the example principals and external id,
    and an alarm address at a documentation domain."""
    found: list[tuple[str, str]] = []

    def principals(where: str, value: Any) -> None:
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for arn in items:
            if not isinstance(arn, str):
                continue
            match = _PRINCIPAL_ARN.match(arn)
            if arn in EXAMPLE_PRINCIPALS or (match and match.group("account") in EXAMPLE_ACCOUNTS):
                found.append((where, arn))

    api = raw.get("api") or {}
    for name, spec in sorted((api.get("callers") or {}).items()):
        principals(f"api.callers.{name}.principals", (spec or {}).get("principals"))
    principals("api.opsCallers", api.get("opsCallers"))
    principals("api.voidCallers", api.get("voidCallers"))
    principals("api.privacyCallers", api.get("privacyCallers"))
    for partner, spec in sorted((raw.get("partnerPrincipals") or {}).items()):
        spec = {"principals": spec} if isinstance(spec, (str, list)) else (spec or {})
        principals(f"partnerPrincipals.{partner}.principals", spec.get("principals"))
        if spec.get("externalId") in EXAMPLE_EXTERNAL_IDS:
            found.append((f"partnerPrincipals.{partner}.externalId", spec["externalId"]))
    email = (raw.get("alarms") or {}).get("email")
    if isinstance(email, str) and _EXAMPLE_EMAIL.search(email.strip()):
        found.append(("alarms.email", email))
    return found


def refuse_example_values(settings: Settings) -> None:
    """Prod synth stops on any example value cdk.json ships, naming each key to replace."""
    if not settings.is_production:
        return
    found = example_values(settings.raw)
    if found:
        where = f"cardstatus:environments.{settings.env_name}"
        lines = "\n".join(f"  {where}.{key}: {value!r}" for key, value in found)
        raise SettingsError(
            f"{settings.env_name!r} still has the example values cdk.json ships; replace each "
            f"with your own (docs/DEPLOY.md 'Values to replace'):\n{lines}"
        )


def load_settings(node: Node) -> Settings:
    env_name = node.try_get_context("env") or "dev"
    shared = _ctx_json(node, SHARED_KEY)
    environments = _ctx_json(node, ENVIRONMENTS_KEY) or {}
    if not isinstance(shared, dict):
        raise SettingsError(f"cdk.json context needs a {SHARED_KEY!r} object")
    if env_name not in environments:
        raise SettingsError(
            f"unknown environment {env_name!r}; cdk.json defines {sorted(environments)}"
        )
    raw = deep_merge(shared, environments[env_name] or {})
    for flag, (section, key) in CONTEXT_FLAGS.items():
        value = node.try_get_context(flag)
        if value is None:
            continue
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        raw.setdefault(section, {})[key] = value
    settings = Settings(env_name=str(env_name), raw=raw)
    settings.validate()
    return settings

"""Environment settings from cdk.json context.

Effective settings for environment E = deep merge of ``cardstatus:shared`` with
``cardstatus:environments[E]``; E comes from ``-c env=<name>`` (default ``dev``).
``cardstatus:shared`` is also read by the local runner (queue/bucket settings), so
keep queue and bucket keys there. See docs/DEPLOY.md for every key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs import Node

ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = ROOT / "cdk.json"
SHARED_KEY = "cardstatus:shared"
ENVIRONMENTS_KEY = "cardstatus:environments"


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


@dataclass(frozen=True)
class FunctionSettings:
    timeout_s: int
    memory_mb: int
    reserved_concurrency: int | None


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

    @property
    def csv_suffixes(self) -> list[str]:
        value = self.get("bucket", "csvSuffixes")
        if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
            raise SettingsError("bucket.csvSuffixes must be a non-empty list of strings")
        return list(value)

    def function(self, name: str) -> FunctionSettings:
        reserved = self.get_optional("functions", name, "reservedConcurrency")
        return FunctionSettings(
            timeout_s=self.get_int("functions", name, "timeoutSeconds", minimum=1),
            memory_mb=self.get_int("functions", name, "memoryMb", minimum=128),
            reserved_concurrency=int(reserved) if reserved is not None else None,
        )

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
        for name in ("ingest", "api", "migrate"):
            if self.function(name).timeout_s > 900:
                raise SettingsError(f"functions.{name}.timeoutSeconds must be <= 900")


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
    settings = Settings(
        env_name=str(env_name), raw=deep_merge(shared, environments[env_name] or {})
    )
    settings.validate()
    return settings

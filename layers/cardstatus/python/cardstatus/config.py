"""Every external setting, read from environment variables in one place.

Lambda functions get these from the CDK stack; local runs from the shell or the CLI flags.
The event publisher's settings live in `cardstatus.event_config` and the retention settings
in `cardstatus.privacy_config`, imported from here on first use (`__getattr__`): the api
needs neither, and building their classes was ~2 ms of its cold import.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardstatus.model import ExceptionReason
from cardstatus.words import word_key

if TYPE_CHECKING:  # at run time: __getattr__
    from cardstatus.event_config import PUT_EVENTS_MAX_ENTRIES as PUT_EVENTS_MAX_ENTRIES
    from cardstatus.event_config import EventSettings as EventSettings
    from cardstatus.event_config import event_settings as event_settings
    from cardstatus.event_config import load_event_settings as load_event_settings
    from cardstatus.privacy_config import PrivacySettings as PrivacySettings
    from cardstatus.privacy_config import load_privacy_settings as load_privacy_settings

# Settings defined in a module of their own, still importable from this one.
_ELSEWHERE = {
    "PUT_EVENTS_MAX_ENTRIES": "cardstatus.event_config",
    "EventSettings": "cardstatus.event_config",
    "event_settings": "cardstatus.event_config",
    "load_event_settings": "cardstatus.event_config",
    "PrivacySettings": "cardstatus.privacy_config",
    "load_privacy_settings": "cardstatus.privacy_config",
}


def __getattr__(name: str) -> Any:  # PEP 562: the names of _ELSEWHERE, imported on first use
    module = _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


DEFAULT_TIMEZONE = "Asia/Dubai"
DEFAULT_PHONE_REGION = "AE"

# Keyword (lower-case substring) -> normalised exception reason. Checked in order.
DEFAULT_REASON_KEYWORDS: dict[str, str] = {
    "not available": ExceptionReason.RECIPIENT_UNAVAILABLE.value,
    "unavailable": ExceptionReason.RECIPIENT_UNAVAILABLE.value,
    "not at home": ExceptionReason.RECIPIENT_UNAVAILABLE.value,
    "no answer": ExceptionReason.RECIPIENT_UNAVAILABLE.value,
    "not reachable": ExceptionReason.RECIPIENT_UNAVAILABLE.value,
    "unreachable": ExceptionReason.RECIPIENT_UNAVAILABLE.value,
    "declined": ExceptionReason.REFUSED.value,
    "refused": ExceptionReason.REFUSED.value,
    "rejected": ExceptionReason.REFUSED.value,
    "address": ExceptionReason.ADDRESS_PROBLEM.value,
    "location": ExceptionReason.ADDRESS_PROBLEM.value,
    "not found": ExceptionReason.ADDRESS_PROBLEM.value,
}


@dataclass(frozen=True)
class PartnerSettings:
    """How to read one partner's files: local timezone, date order, phone region, status words.

    status_words: extra (word, status) pairs for the status vocabulary, status one of the four
    statuses or UNTRACKED (a tuple so that the settings stay hashable).
    """

    name: str
    timezone: str = DEFAULT_TIMEZONE
    day_first: bool = True
    phone_region: str = DEFAULT_PHONE_REGION
    status_words: tuple[tuple[str, str], ...] = ()
    # Card ownership (README "Card ownership"): partners in one group share cards. `group` names
    # the group; `handover_to` lists partners that may report this partner's cards (and whose
    # cards this partner may report: a handover joins both into one group).
    group: str | None = None
    handover_to: tuple[str, ...] = ()
    feed: FeedSettings | None = None  # None: the partner's feed is not monitored


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order


@dataclass(frozen=True)
class FeedSettings:
    """What a partner's feed promises (README "Partner feed health"); PARTNER_CONFIG
    `feed: {every_hours, grace_hours, quiet_days, max_reject_rate, min_rows}`.

    every_hours: a new file at least every this many counted hours (required, > 0).
    grace_hours: counted hours after the due time before the feed is late (default 0).
    quiet_days: weekdays (partner's timezone) on which no file is expected: their hours are not
        counted (default none), e.g. ("fri",).
    max_reject_rate: rejected rows / rows over the last 7 days above this is unhealthy (0-1;
        default None: no limit).
    min_rows: a file with fewer rows gets a volume warning (default None: no minimum).
    """

    every_hours: float
    grace_hours: float = 0.0
    quiet_days: tuple[str, ...] = ()
    max_reject_rate: float | None = None
    min_rows: int | None = None


def _number(name: str, key: str, raw: object, *, low: float, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
        raise ValueError(
            f"PARTNER_CONFIG[{name!r}].feed.{key} must be a number from {low:g} to {high:g}; "
            f"got {raw!r}"
        )
    return float(raw)


def parse_feed(name: str, raw: object) -> FeedSettings | None:
    """A partner's `feed` object, checked; None when absent (not monitored)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError(f"PARTNER_CONFIG[{name!r}].feed must be an object")
    known = {"every_hours", "grace_hours", "quiet_days", "max_reject_rate", "min_rows"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(
            f"PARTNER_CONFIG[{name!r}].feed has unknown key(s) {unknown}; known: {sorted(known)}"
        )
    if "every_hours" not in raw:
        raise ValueError(f"PARTNER_CONFIG[{name!r}].feed.every_hours is required")
    every = _number(name, "every_hours", raw["every_hours"], low=0.25, high=24 * 31)
    grace = _number(name, "grace_hours", raw.get("grace_hours", 0), low=0, high=24 * 31)
    days_raw = raw.get("quiet_days") or []
    if not isinstance(days_raw, list):
        raise ValueError(f"PARTNER_CONFIG[{name!r}].feed.quiet_days must be a list of weekdays")
    days = []
    for day in days_raw:
        short = str(day).strip().lower()[:3]
        if short not in WEEKDAYS:
            raise ValueError(
                f"PARTNER_CONFIG[{name!r}].feed.quiet_days: {day!r} is not a weekday "
                f"({', '.join(WEEKDAYS)})"
            )
        days.append(short)
    if len(set(days)) == len(WEEKDAYS):
        raise ValueError(f"PARTNER_CONFIG[{name!r}].feed.quiet_days cannot be every day")
    rate = raw.get("max_reject_rate")
    min_rows = raw.get("min_rows")
    if min_rows is not None and (
        isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1
    ):
        raise ValueError(f"PARTNER_CONFIG[{name!r}].feed.min_rows must be a whole number >= 1")
    return FeedSettings(
        every_hours=every,
        grace_hours=grace,
        quiet_days=tuple(sorted(set(days), key=WEEKDAYS.index)),
        max_reject_rate=None
        if rate is None
        else _number(name, "max_reject_rate", rate, low=0, high=1),
        min_rows=min_rows,
    )


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    db_secret_arn: str | None
    db_host: str | None
    db_port: int
    db_name: str
    db_user: str | None
    db_iam_auth: bool
    db_sslrootcert: str | None
    db_connect_timeout_s: int
    db_statement_timeout_ms: int
    aws_region: str | None
    reports_prefix: str
    incoming_prefix: str
    max_object_bytes: int
    max_field_chars: int
    partners: dict[str, PartnerSettings] = field(default_factory=dict)
    reason_keywords: dict[str, str] = field(default_factory=dict)
    # Card-id + phone lookups that do not match, per caller and window (cardstatus/
    # lookup_budget.py; cdk.json api.lookupMismatchBudget / api.lookupBudgetWindowSeconds).
    lookup_mismatch_budget: int = 20  # LOOKUP_MISMATCH_BUDGET
    lookup_budget_window_s: int = 3600  # LOOKUP_BUDGET_WINDOW_S
    # CARD_ID_PATTERN: this deployment's own card-id shape (a regular expression the whole
    # upper-cased card id must match), on top of the built-in shape and phone checks.
    card_id_pattern: str | None = None
    # The api's second connection, for its reads (README "Database connections"):
    # DB_READ_HOST, a host reached like DB_HOST (same user, port, database; its own IAM
    # token) - the stack sets it to the Aurora readers' endpoint; DATABASE_READ_URL, a whole
    # URL (local runs, tests). Neither set: one connection does everything.
    db_read_host: str | None = None
    database_read_url: str | None = None

    @property
    def has_reader(self) -> bool:
        return bool(self.db_read_host or self.database_read_url)

    def partner(self, name: str) -> PartnerSettings:
        return self.partners.get(name) or self.partners.get("default") or PartnerSettings(name)


STATUS_WORD_VALUES = ("PICKED_UP", "DELIVERY_EXCEPTION", "DELIVERED", "RETURNED", "UNTRACKED")


def _status_words(name: str, raw: object) -> tuple[tuple[str, str], ...]:
    """{"handed over": "DELIVERED", "parked": "untracked"} → (("handed over", "DELIVERED"), …)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ValueError(f"PARTNER_CONFIG[{name!r}].status_words must be an object word -> status")
    words = []
    for word, value in raw.items():
        status = str(value).strip().upper().replace(" ", "_").replace("-", "_")
        if status not in STATUS_WORD_VALUES:
            raise ValueError(
                f"PARTNER_CONFIG[{name!r}].status_words[{word!r}] must be one of "
                f"{', '.join(STATUS_WORD_VALUES)}; got {value!r}"
            )
        if not word_key(str(word)):
            raise ValueError(
                f"PARTNER_CONFIG[{name!r}].status_words[{word!r}] has no letter or digit in any "
                "script, so it can never match a status cell or a file name; remove it or write "
                "the word itself"
            )
        words.append((str(word), status))
    return tuple(words)


def _group(name: str, raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"PARTNER_CONFIG[{name!r}].group must be a non-empty string")
    return raw.strip()


def _handover_to(name: str, raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.strip() for p in raw):
        raise ValueError(f"PARTNER_CONFIG[{name!r}].handover_to must be a list of partner names")
    return tuple(p.strip() for p in raw)


def _parse_partners(raw: str | None) -> dict[str, PartnerSettings]:
    """PARTNER_CONFIG is JSON: {"<partner>": {"timezone", "day_first", "phone_region",
    "status_words": {"<word>": "<status>|UNTRACKED"}, "feed": {...} (FeedSettings),
    "group": "<name>", "handover_to": ["<partner>", ...]}}."""
    partners: dict[str, PartnerSettings] = {}
    if not raw:
        return partners
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("PARTNER_CONFIG must be a JSON object keyed by partner name")
    for name, opts in data.items():
        opts = opts or {}
        partners[name] = PartnerSettings(
            name=name,
            timezone=str(opts.get("timezone", DEFAULT_TIMEZONE)),
            day_first=bool(opts.get("day_first", True)),
            phone_region=str(opts.get("phone_region", DEFAULT_PHONE_REGION)).upper(),
            status_words=_status_words(name, opts.get("status_words")),
            group=_group(name, opts.get("group")),
            handover_to=_handover_to(name, opts.get("handover_to")),
            feed=parse_feed(name, opts.get("feed")),
        )
    return partners


def _read_partner_config() -> str | None:
    inline = os.environ.get("PARTNER_CONFIG")
    if inline:
        return inline
    path = os.environ.get("PARTNER_CONFIG_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8")
    return None


def _parse_reason_keywords(raw: str | None) -> dict[str, str]:
    if not raw:
        return dict(DEFAULT_REASON_KEYWORDS)
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("EXCEPTION_REASON_KEYWORDS must be a JSON object keyword -> reason")
    return {str(k).lower(): str(v) for k, v in data.items()}


def _card_id_pattern(raw: str | None) -> str | None:
    """CARD_ID_PATTERN, checked to compile at start (a typo must not reach the first file)."""
    if raw is None or not raw.strip():
        return None
    try:
        re.compile(raw)
    except re.error as exc:
        raise ValueError(f"CARD_ID_PATTERN is not a valid regular expression: {exc}") from None
    return raw


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_settings() -> Settings:
    env = os.environ
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        db_secret_arn=env.get("DB_SECRET_ARN") or None,
        db_host=env.get("DB_HOST") or None,
        db_port=int(env.get("DB_PORT", "5432")),
        db_name=env.get("DB_NAME", "cardstatus"),
        db_user=env.get("DB_USER") or None,
        db_iam_auth=_bool(env.get("DB_IAM_AUTH")),
        db_sslrootcert=env.get("DB_SSLROOTCERT") or None,
        db_connect_timeout_s=int(env.get("DB_CONNECT_TIMEOUT_S", "5")),
        db_statement_timeout_ms=int(env.get("DB_STATEMENT_TIMEOUT_MS", "0")),
        aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        reports_prefix=env.get("REPORTS_PREFIX", "reports/"),
        incoming_prefix=env.get("INCOMING_PREFIX", "incoming/"),
        max_object_bytes=int(env.get("MAX_OBJECT_BYTES", str(2 * 1024**3))),
        max_field_chars=int(env.get("MAX_FIELD_CHARS", "10000")),
        partners=_parse_partners(_read_partner_config()),
        reason_keywords=_parse_reason_keywords(env.get("EXCEPTION_REASON_KEYWORDS")),
        lookup_mismatch_budget=_positive_int(env, "LOOKUP_MISMATCH_BUDGET", 20),
        lookup_budget_window_s=_positive_int(env, "LOOKUP_BUDGET_WINDOW_S", 3600),
        card_id_pattern=_card_id_pattern(env.get("CARD_ID_PATTERN")),
        db_read_host=env.get("DB_READ_HOST") or None,
        database_read_url=env.get("DATABASE_READ_URL") or None,
    )


def _positive_int(env: Any, name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return value


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Settings for this process, read once (Lambda containers keep them across invocations)."""
    return load_settings()


def reset_settings_cache() -> None:
    """Tests and the CLI change the environment; this makes the next settings() re-read it."""
    from cardstatus.event_config import event_settings

    settings.cache_clear()
    event_settings.cache_clear()
    phone_key_settings.cache_clear()


# -- phone hash key (README "Privacy", cardstatus.phonehash) ----------------------------------


@dataclass(frozen=True)
class PhoneKeySettings:
    """Where the phone hash key ring is: exactly one source is used, in this order.

    PHONE_KEY: the ring's JSON inline (tests); PHONE_KEY_SECRET_ARN: a Secrets Manager secret
    (AWS, created by the stack); PHONE_KEY_FILE: a JSON file (local, under .local/).
    """

    inline: str | None = None
    secret_arn: str | None = None
    key_file: str | None = None
    aws_region: str | None = None


@lru_cache(maxsize=1)
def phone_key_settings() -> PhoneKeySettings:
    env = os.environ
    return PhoneKeySettings(
        inline=env.get("PHONE_KEY") or None,
        secret_arn=env.get("PHONE_KEY_SECRET_ARN") or None,
        key_file=env.get("PHONE_KEY_FILE") or None,
        aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
    )

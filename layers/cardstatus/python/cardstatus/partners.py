"""Partner feed health (README "Partner feed health", SPEC §9b): is each partner sending its
files on time, how many of their rows are rejected, how many of its cards are stuck.

Pure, typed functions over a psycopg2 connection, used by the API (functions/api/
partner_routes.py), the CLI (`cardstatus partners`) and the sweeper (metrics, alarms and the
PartnerFeedLate / PartnerFeedRecovered events). Everything is computed "as of" a time `at`
(default now): only files finished at or before `at` count, so a past moment can be replayed.

Rules (the README states them too):

* A partner is *known* when it is configured (PARTNER_CONFIG, `default` excepted) or has sent a
  file. Names match case-insensitively: `Speedy` and `speedy` are one partner.
* A partner is *monitored* when its configuration has `feed: {every_hours, ...}`; else its state
  is `not_monitored` (its numbers are still reported).
* A *file* of the feed is any ingested file of the partner except a duplicate (the same bytes
  again are not a new delivery): applied and rejected files both count as delivered.
* Counted time: hours that fall on a `quiet_days` weekday (in the partner's timezone, midnight
  to midnight) are not counted. `due_by` = the last file's time + `every_hours` counted hours;
  `late_after` = the last file's time + (`every_hours` + `grace_hours`) counted hours. A file
  received on a quiet day starts the count at the next counted midnight.
* State: `missing` (monitored, never sent a file), `late` (`at` is after `late_after`),
  `on_time` (otherwise), `not_monitored`.
* Last 7 days: files finished in (at - 7 days, at]; reject rate = rejected rows / rows (None
  without rows); `reject_rate_exceeded` when above the feed's `max_reject_rate`.
* Today: since midnight of `at`'s day in the partner's timezone; rows per day: the 14 days
  ending today, oldest first, by the day each file finished (partner's timezone).
* Stuck cards: cards whose current status is PICKED_UP or DELIVERY_EXCEPTION since more than
  72 hours before `at`, counted under the partner of the card's current event.
* Volume warning: a file whose rows are under 20% of the median rows of the partner's previous
  (up to 10) applied, not voided files (at least 3 of them needed), or under the feed's
  `min_rows`. Ingestion writes the same warning into that file's report.
* Alerting (CLI exit 1, the CloudWatch alarm): a monitored partner that is late or over its
  reject rate. `missing` is shown, not alerted (a partner that never sent may not be live yet).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg2.extensions import connection as Connection

from cardstatus.cards import iso_utc, run_query
from cardstatus.config import WEEKDAYS, FeedSettings, PartnerSettings, Settings
from cardstatus.errors import InvalidParameter, NotFound
from cardstatus.sql import partners as sql

ON_TIME, LATE, MISSING, NOT_MONITORED = "on_time", "late", "missing", "not_monitored"
STATES = (ON_TIME, LATE, MISSING, NOT_MONITORED)

WINDOW_DAYS = 7
SPARK_DAYS = 14
STUCK_HOURS = 72
STUCK_STATUSES = ("PICKED_UP", "DELIVERY_EXCEPTION")
VOLUME_SHARE = 0.2  # under 20% of the median ...
VOLUME_HISTORY = 10  # ... of the previous 10 applied files ...
VOLUME_MIN_HISTORY = 3  # ... when there are at least 3 of them
PARTNER_MAX_LENGTH = 128
AT_MESSAGE = "at must be an ISO 8601 date or time, e.g. 2026-12-06T09:00:00Z"

LATE_EVENT = "PartnerFeedLate"
RECOVERED_EVENT = "PartnerFeedRecovered"


class PartnerNotFound(NotFound):
    """No configured or seen partner has this name."""

    default_message = "no partner has this name"


# --- configuration ------------------------------------------------------------------------


def partner_key(name: str) -> str:
    """How partner names are matched: case-insensitively, surrounding blanks ignored."""
    return name.strip().lower()


def parse_at(raw: str | datetime | None, now: Callable[[], datetime]) -> datetime:
    """The time health is computed for: an ISO 8601 date or time (UTC without an offset), else
    now()."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return now().astimezone(UTC)
    if isinstance(raw, datetime):
        value = raw
    else:
        text = raw.strip()
        try:
            if len(text) > 40:
                raise ValueError
            value = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InvalidParameter(AT_MESSAGE, parameter="at") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def parse_partner_name(raw: str | None) -> str:
    value = (raw or "").strip()
    if not value or len(value) > PARTNER_MAX_LENGTH or not value.isprintable():
        raise InvalidParameter(
            f"partner must be 1-{PARTNER_MAX_LENGTH} printable characters", parameter="partner"
        )
    return value


@dataclass(frozen=True)
class Partner:
    """One known partner: its display name, the spellings its files use, its settings."""

    name: str
    spellings: tuple[str, ...]
    settings: PartnerSettings
    configured: bool

    @property
    def key(self) -> str:
        return partner_key(self.name)

    @property
    def feed(self) -> FeedSettings | None:
        return self.settings.feed


def known_partners(conn: Connection, cfg: Settings) -> list[Partner]:
    """Configured partners (but `default`) and every partner that has sent a file, by name,
    one entry per case-insensitive name."""
    configured = {partner_key(n): s for n, s in cfg.partners.items() if partner_key(n) != "default"}
    seen: dict[str, list[str]] = {}
    for (name,) in run_query(conn, sql.KNOWN_PARTNERS, {}):
        seen.setdefault(partner_key(name), []).append(name)
    out = []
    for key in sorted(set(configured) | set(seen)):
        spellings = tuple(sorted(seen.get(key, [])))
        settings = configured.get(key)
        # the configured name; else the lower-case spelling when files use it; else the first
        name = settings.name if settings else (key if key in spellings else spellings[0])
        out.append(
            Partner(
                name=name,
                spellings=tuple(sorted({*spellings, name})),
                # `default`'s settings read its files; its feed monitors no one
                settings=settings or replace(cfg.partner(name), feed=None),
                configured=settings is not None,
            )
        )
    return out


def find_partner(conn: Connection, cfg: Settings, raw: str | None) -> Partner:
    key = partner_key(parse_partner_name(raw))
    partners = known_partners(conn, cfg)
    for partner in partners:
        if partner.key == key:
            return partner
    known = ", ".join(p.name for p in partners) or "none"
    raise PartnerNotFound(f"unknown partner {raw!r} (known: {known})")


# --- counted time ------------------------------------------------------------------------


def _next_midnight(t: datetime, tz: ZoneInfo) -> datetime:
    local = t.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)


def add_counted_hours(
    start: datetime, hours: float, tz: ZoneInfo, quiet_days: Iterable[str] = ()
) -> datetime:
    """start + `hours`, counting no time on the quiet weekdays (in tz, midnight to midnight)."""
    quiet = {WEEKDAYS.index(d) for d in quiet_days}
    remaining = timedelta(hours=hours)
    t = start.astimezone(UTC)
    if not quiet:
        return t + remaining
    while True:
        midnight = _next_midnight(t, tz)
        if t.astimezone(tz).weekday() in quiet:
            t = midnight
            continue
        if remaining <= midnight - t:
            return t + remaining
        remaining -= midnight - t
        t = midnight


# --- volume -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeWarning:
    file_id: int | None
    rows: int
    median_rows: float | None
    files_compared: int
    min_rows: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "rows": self.rows,
            "median_rows": self.median_rows,
            "files_compared": self.files_compared,
            "min_rows": self.min_rows,
            "message": self.message,
        }


def volume_warning(
    rows: int, previous_rows: Sequence[int], min_rows: int | None = None, file_id: int | None = None
) -> VolumeWarning | None:
    """A warning when `rows` is under 20% of the median of the previous files' rows (newest
    first, the first 10 used, at least 3 needed) or under `min_rows`; else None."""
    history = list(previous_rows)[:VOLUME_HISTORY]
    median = float(statistics.median(history)) if len(history) >= VOLUME_MIN_HISTORY else None
    reasons = []
    if median is not None and rows < VOLUME_SHARE * median:
        reasons.append(
            f"{rows} rows is under {VOLUME_SHARE:.0%} of the median ({median:g}) of the "
            f"partner's previous {len(history)} files"
        )
    if min_rows is not None and rows < min_rows:
        reasons.append(f"{rows} rows is under the feed's min_rows ({min_rows})")
    if not reasons:
        return None
    return VolumeWarning(
        file_id=file_id,
        rows=rows,
        median_rows=median,
        files_compared=len(history),
        min_rows=min_rows,
        message="low volume: " + "; ".join(reasons),
    )


def ingest_volume_warning(
    cur: Any, partner: str, file_id: int | None, rows: int, feed: FeedSettings | None
) -> VolumeWarning | None:
    """The volume warning of a file being applied (ingestion's report step): one indexed query
    for the rows of the partner's previous applied files."""
    cur.execute(
        sql.PREVIOUS_APPLIED_ROWS,
        {"partner": partner, "file_id": file_id or 0, "limit": VOLUME_HISTORY},
    )
    previous = [int(r[0]) for r in cur.fetchall()]
    return volume_warning(rows, previous, feed.min_rows if feed else None, file_id)


# --- health -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    file_id: int
    received_at: datetime
    finished_at: datetime
    outcome: str
    rows: int
    accepted: int
    rejected: int
    voided: bool


@dataclass
class Window:
    files: int = 0
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_files: int = 0

    @property
    def reject_rate(self) -> float | None:
        return round(self.rejected / self.rows, 4) if self.rows else None

    def add(self, f: FileStat) -> None:
        self.files += 1
        self.rows += f.rows
        self.accepted += f.accepted
        self.rejected += f.rejected
        self.rejected_files += f.outcome == "rejected_file"


@dataclass
class PartnerHealth:
    partner: str
    state: str
    at: datetime
    timezone: str
    feed: FeedSettings | None
    configured: bool
    last_file: dict[str, Any] | None = None
    last_file_at: datetime | None = None
    due_by: datetime | None = None
    late_after: datetime | None = None
    last_7_days: Window = field(default_factory=Window)
    today_files: int = 0
    today_rows: int = 0
    rows_per_day: list[dict[str, Any]] = field(default_factory=list)
    stuck: dict[str, int] = field(default_factory=dict)
    volume_warning: VolumeWarning | None = None
    state_since: datetime | None = None  # recorded by the sweeper (partner_feed_state)

    @property
    def monitored(self) -> bool:
        return self.feed is not None

    @property
    def minutes_since_last_file(self) -> int | None:
        if self.last_file_at is None:
            return None
        return max(0, int((self.at - self.last_file_at).total_seconds() // 60))

    @property
    def minutes_late(self) -> int | None:
        if self.state != LATE or self.late_after is None:
            return None
        return int((self.at - self.late_after).total_seconds() // 60)

    @property
    def reject_rate_exceeded(self) -> bool:
        rate = self.last_7_days.reject_rate
        limit = self.feed.max_reject_rate if self.feed else None
        return limit is not None and rate is not None and rate > limit

    @property
    def alerting(self) -> bool:
        """What pages someone: a monitored feed that is late or over its reject rate."""
        return self.monitored and (self.state == LATE or self.reject_rate_exceeded)

    def to_json(self) -> dict[str, Any]:
        w = self.last_7_days
        feed = self.feed
        return {
            "partner": self.partner,
            "state": self.state,
            "alerting": self.alerting,
            "as_of": iso_utc(self.at),
            "monitored": self.monitored,
            "configured": self.configured,
            "timezone": self.timezone,
            "feed": None
            if feed is None
            else {
                "every_hours": feed.every_hours,
                "grace_hours": feed.grace_hours,
                "quiet_days": list(feed.quiet_days),
                "max_reject_rate": feed.max_reject_rate,
                "min_rows": feed.min_rows,
            },
            "last_file_at": iso_utc(self.last_file_at),
            "last_file": self.last_file,
            "minutes_since_last_file": self.minutes_since_last_file,
            "due_by": iso_utc(self.due_by),
            "late_after": iso_utc(self.late_after),
            "minutes_late": self.minutes_late,
            "state_since": iso_utc(self.state_since),
            "last_7_days": {
                "files": w.files,
                "rows": w.rows,
                "accepted": w.accepted,
                "rejected": w.rejected,
                "reject_rate": w.reject_rate,
                "rejected_files": w.rejected_files,
            },
            "reject_rate_exceeded": self.reject_rate_exceeded,
            "today": {"files": self.today_files, "rows": self.today_rows},
            "stuck_cards": {
                **{s: self.stuck.get(s, 0) for s in STUCK_STATUSES},
                "total": sum(self.stuck.get(s, 0) for s in STUCK_STATUSES),
                "older_than_hours": STUCK_HOURS,
            },
            "rows_per_day": self.rows_per_day,
            "volume_warning": self.volume_warning.to_json() if self.volume_warning else None,
        }


def feed_state(
    feed: FeedSettings | None, last_file_at: datetime | None, at: datetime, tz: ZoneInfo
) -> tuple[str, datetime | None, datetime | None]:
    """(state, due_by, late_after) of a feed whose last file came at last_file_at."""
    if feed is None:
        return NOT_MONITORED, None, None
    if last_file_at is None:
        return MISSING, None, None
    due_by = add_counted_hours(last_file_at, feed.every_hours, tz, feed.quiet_days)
    late_after = add_counted_hours(
        last_file_at, feed.every_hours + feed.grace_hours, tz, feed.quiet_days
    )
    return (LATE if at > late_after else ON_TIME), due_by, late_after


def _zone(settings: PartnerSettings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def partner_health(
    conn: Connection,
    partner: Partner,
    at: datetime,
    stuck: dict[str, dict[str, int]] | None = None,
) -> PartnerHealth:
    """The health of one partner as of `at` (stuck: stuck_counts(), computed once for a list)."""
    tz = _zone(partner.settings)
    names = list(partner.spellings)
    local_today = at.astimezone(tz).date()
    spark_start = datetime.combine(
        local_today - timedelta(days=SPARK_DAYS - 1), time(0), tzinfo=tz
    ).astimezone(UTC)
    since = min(spark_start, at - timedelta(days=WINDOW_DAYS))
    files = [
        FileStat(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5]), int(r[6]), bool(r[7]))
        for r in run_query(conn, sql.FILES_IN_WINDOW, {"names": names, "since": since, "at": at})
    ]
    last = run_query(conn, sql.LAST_FILE, {"names": names, "at": at})
    last_file_at = last[0][2] if last else None
    state, due_by, late_after = feed_state(partner.feed, last_file_at, at, tz)
    health = PartnerHealth(
        partner=partner.name,
        state=state,
        at=at,
        timezone=str(tz),
        feed=partner.feed,
        configured=partner.configured,
        last_file_at=last_file_at,
        due_by=due_by,
        late_after=late_after,
    )
    if last:
        fid, key, received, _finished, outcome, rows = last[0]
        health.last_file = {
            "file_id": int(fid),
            "key": key,
            "received_at": iso_utc(received),
            "outcome": outcome,
            "rows": int(rows),
        }
    _tally_files(health, files, at, tz, local_today)
    counts = stuck if stuck is not None else stuck_counts(conn, at)
    health.stuck = counts.get(partner.key, {})
    health.volume_warning = _newest_volume_warning(conn, partner, names, at)
    return health


def _tally_files(
    health: PartnerHealth, files: list[FileStat], at: datetime, tz: Any, local_today: date
) -> None:
    """The last 7 days, today and the rows per local day (SPARK_DAYS) from the files read."""
    week_start = at - timedelta(days=WINDOW_DAYS)
    today_start = datetime.combine(local_today, time(0), tzinfo=tz).astimezone(UTC)
    per_day: dict[date, list[int]] = {
        local_today - timedelta(days=i): [0, 0] for i in range(SPARK_DAYS)
    }
    for f in files:
        if f.finished_at > week_start:
            health.last_7_days.add(f)
        if f.finished_at >= today_start:
            health.today_files += 1
            health.today_rows += f.rows
        day = f.finished_at.astimezone(tz).date()
        if day in per_day:
            per_day[day][0] += f.rows
            per_day[day][1] += 1
    health.rows_per_day = [
        {"date": d.isoformat(), "rows": v[0], "files": v[1]} for d, v in sorted(per_day.items())
    ]


def _newest_volume_warning(
    conn: Connection, partner: Partner, names: list[str], at: datetime
) -> VolumeWarning | None:
    """The volume warning of the partner's newest applied file, if any (one indexed query)."""
    recent = run_query(
        conn, sql.RECENT_APPLIED_ROWS, {"names": names, "at": at, "limit": VOLUME_HISTORY + 1}
    )
    if not recent:
        return None
    newest_id, newest_rows = recent[0]
    return volume_warning(
        int(newest_rows),
        [int(r[1]) for r in recent[1:]],
        partner.feed.min_rows if partner.feed else None,
        int(newest_id),
    )


def stuck_counts(conn: Connection, at: datetime) -> dict[str, dict[str, int]]:
    """{partner key: {status: cards}} of cards stuck more than STUCK_HOURS before `at`."""
    out: dict[str, dict[str, int]] = {}
    cutoff = at - timedelta(hours=STUCK_HOURS)
    for key, status, count in run_query(conn, sql.STUCK_BY_PARTNER, {"cutoff": cutoff}):
        out.setdefault(key, {})[status] = int(count)
    return out


def _recorded_since(conn: Connection) -> dict[str, tuple[str, datetime]]:
    return {p: (s, since) for p, s, since in run_query(conn, sql.READ_STATES, {})}


def _with_recorded(healths: list[PartnerHealth], conn: Connection) -> list[PartnerHealth]:
    recorded = _recorded_since(conn)
    for h in healths:
        state_since = recorded.get(partner_key(h.partner))
        if state_since and state_since[0] == h.state:
            h.state_since = state_since[1]
    return healths


def all_health(
    conn: Connection,
    cfg: Settings,
    at: str | datetime | None = None,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[PartnerHealth]:
    """Every known partner's health as of `at`, by name."""
    when = parse_at(at, now)
    stuck = stuck_counts(conn, when)
    healths = [partner_health(conn, p, when, stuck) for p in known_partners(conn, cfg)]
    return _with_recorded(healths, conn)


def one_health(
    conn: Connection,
    cfg: Settings,
    name: str | None,
    at: str | datetime | None = None,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PartnerHealth:
    """One partner's health (name matched case-insensitively), else PartnerNotFound."""
    when = parse_at(at, now)
    partner = find_partner(conn, cfg, name)
    return _with_recorded([partner_health(conn, partner, when)], conn)[0]


def summary(healths: Sequence[PartnerHealth]) -> dict[str, Any]:
    """GET /partners: every partner, and the ones alerting."""
    return {
        "as_of": iso_utc(healths[0].at) if healths else None,
        "partners": [h.to_json() for h in healths],
        "alerting": [h.partner for h in healths if h.alerting],
    }


# --- transitions (the sweeper) ------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    partner: str
    detail_type: str
    previous_state: str
    state: str
    outbox_id: int
    event_id: str


def _event_detail(h: PartnerHealth, previous: str, previous_since: datetime) -> dict[str, Any]:
    feed = h.feed
    return {
        "partner": h.partner,
        "state": h.state,
        "previous_state": previous,
        "last_file_at": iso_utc(h.last_file_at),
        "last_file_id": h.last_file["file_id"] if h.last_file else None,
        "due_by": iso_utc(h.due_by),
        "late_after": iso_utc(h.late_after),
        "minutes_since_last_file": h.minutes_since_last_file,
        # late: when the feed became late; recovered: how long it had been late
        "late_since": iso_utc(h.late_after if h.state == LATE else previous_since),
        "every_hours": feed.every_hours if feed else None,
        "grace_hours": feed.grace_hours if feed else None,
        "detected_at": iso_utc(h.at),
    }


def record_transitions(conn: Connection, healths: Sequence[PartnerHealth]) -> list[Transition]:
    """Record each monitored partner's state (partner_feed_state) and write one outbox event per
    transition into or out of `late`, in one transaction: PartnerFeedLate when a feed becomes
    late (also when first seen late), PartnerFeedRecovered when a late feed is on time again.
    Never repeated while the state holds; concurrent sweeps serialise on the state rows.
    The caller publishes the events (cardstatus.events) after this commits."""
    transitions: list[Transition] = []
    try:
        with conn.cursor() as cur:
            for h in sorted((h for h in healths if h.monitored), key=lambda h: h.partner):
                key = partner_key(h.partner)
                cur.execute(sql.ENSURE_STATE, {"partner": key, "at": h.at})
                cur.execute(sql.LOCK_STATE, {"partner": key})
                previous, previous_since = cur.fetchone()  # type: ignore[misc]
                detail_type = None
                if h.state == LATE and previous != LATE:
                    detail_type = LATE_EVENT
                elif h.state != LATE and previous == LATE:
                    detail_type = RECOVERED_EVENT
                event_id = None
                if detail_type:
                    detail = _event_detail(h, previous, previous_since)
                    cur.execute(
                        sql.INSERT_FEED_EVENT,
                        {"detail": json.dumps(detail), "detail_type": detail_type},
                    )
                    outbox_id, event_id = cur.fetchone()  # type: ignore[misc]
                    transitions.append(
                        Transition(h.partner, detail_type, previous, h.state, outbox_id, event_id)
                    )
                since = h.late_after if h.state == LATE and h.late_after else h.at
                cur.execute(
                    sql.UPDATE_STATE,
                    {
                        "partner": key,
                        "state": h.state,
                        "since": since,
                        "last_file_at": h.last_file_at,
                        "at": h.at,
                        "event_id": event_id,
                    },
                )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return transitions

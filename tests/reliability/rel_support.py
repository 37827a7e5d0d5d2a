"""Shared pieces of the reliability suite: the reference model of the status rules (README
"Domain rules"), a renderer of messy partner files, database state readers, counters, and
small AWS/Lambda helpers.

Nothing here imports `conftest` (several conftest modules share that name).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

from cardstatus.config import Settings, load_settings
from cardstatus.ingest import SourceInfo, ingest_retrying

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
PARTNER_FILES = EVENTS / "partner_files"
BUCKET = "cardstatus-reliability"

STATUSES = ("PICKED_UP", "DELIVERY_EXCEPTION", "DELIVERED", "RETURNED")
RANK = {s: i for i, s in enumerate(STATUSES)}
DUBAI = timezone(timedelta(hours=4))  # Asia/Dubai has no DST

# --- counters printed at the end of the run ---------------------------------------------------

COUNTS: Counter[str] = Counter()
_COUNTS_LOCK = threading.Lock()


def count(name: str, n: int = 1) -> None:
    with _COUNTS_LOCK:
        COUNTS[name] += n


# --- test data vocabulary ---------------------------------------------------------------------

CARD_IDS = ("ZYW8827", "ZYW8890", "C-100", "c_7", "Q1")
# National significant numbers (AE mobiles); a full phone in any form contains these digits.
NATIONALS = ("585949014", "534534534", "545576586", "501234567", "559876543")
# Every phone number any test of this suite uses, for the PII scans.
ALL_NATIONALS = (*NATIONALS, "502223333", "524445555", "567778888", "581112222")
BASE_TIME = datetime(2024, 3, 5, 6, 0, tzinfo=UTC)
TIMES = tuple(BASE_TIME + timedelta(minutes=m) for m in (0, 7, 60, 61, 300, 1440, 2000, 2881))
PARTNERS = ("acme", "zeta")

# (raw comment as written in the file, comment as stored, reason when it is an exception)
COMMENTS: tuple[tuple[str, str | None, str], ...] = (
    ("", None, "other"),
    ("User not available", "User not available", "recipient_unavailable"),
    ("User declined to accept package", "User declined to accept package", "refused"),
    ("Wrong address, building closed", "Wrong address, building closed", "address_problem"),
    (
        '=HYPERLINK("http://evil.example/x","click")',
        '=HYPERLINK("http://evil.example/x","click")',
        "other",
    ),
    ("  padded; with semicolon  ", "padded; with semicolon", "other"),
    ('He said "call me"\nthen left', 'He said "call me" then left', "other"),
    ("Café closed – retry", "Café closed – retry", "other"),
    ("@SUM(A1:A9)+cmd|' /C calc'!A0", "@SUM(A1:A9)+cmd|' /C calc'!A0", "other"),
    ("-2+3 tab\there", "-2+3 tab here", "other"),
)

PHONE_FORMS = (
    lambda n: n,
    lambda n: "0" + n,
    lambda n: "971" + n,
    lambda n: "+971" + n,
    lambda n: "00971" + n,
    lambda n: f"+971 {n[:2]} {n[2:5]} {n[5:]}",
    lambda n: f"0{n[:2]}-{n[2:5]}-{n[5:]}",
    lambda n: f"(0{n[:2]}) {n[2:]}",
    lambda n: f'"0{n}"',
    lambda n: f"'+971{n}'",
)
INVALID_PHONES = ("9.7E+11", "12345", "9.71585E+11")

TS_FORMATS = (
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"),
    lambda t: t.astimezone(DUBAI).isoformat(),
    lambda t: t.astimezone(DUBAI).strftime("%d-%m-%Y %H:%M"),
    lambda t: _ampm(t.astimezone(DUBAI), " "),
    lambda t: _ampm(t.astimezone(DUBAI), ""),
    lambda t: t.astimezone(DUBAI).strftime("%Y-%m-%d %H:%M:%S"),
    lambda t: t.astimezone(DUBAI).strftime("%d/%m/%Y %H:%M:%S"),
)


def _ampm(local: datetime, space: str) -> str:
    hour = local.hour % 12 or 12
    return f"{local:%d/%m/%Y} {hour}:{local:%M}{space}{'AM' if local.hour < 12 else 'PM'}"


HEADER_NAMES = {
    "card": ("Card ID", "CardID", "card_id", " card id ", "CARD ID"),
    "phone": ("User contact", "User Mobile", "Phone", "Mobile"),
    "ts": ("Timestamp", "Date", "timestamp "),
    "comment": ("Comment", "Reason", "Remarks"),
    "status": ("Status", "Event"),
    "id": ("ID",),
    "extra": ("Courier", "Region code"),
}
STATUS_WORDS = {
    "PICKED_UP": ("Picked up", "PICKUP", "picked_up"),
    "DELIVERY_EXCEPTION": ("Delivery exception", "DELIVERY_EXCEPTION", "exception"),
    "DELIVERED": ("Delivered", "DELIVERED", "delivered"),
    "RETURNED": ("Returned", "RETURN", "returned"),
}
FILE_TYPE_WORDS = {
    "PICKED_UP": ("Pickup", "pickup", "Picked up"),
    "DELIVERY_EXCEPTION": ("Delivery exceptions", "EXCEPTION", "delivery exception"),
    "DELIVERED": ("Delivered", "delivered", "DELIVERED"),
    "RETURNED": ("Returned", "return", "Returns"),
}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "utf-16-le-nobom")
NEWLINES = ("\r\n", "\n", "\r")
DELIMITERS = (",", ";", "\t")


# --- the reference model of the status rules (README "Domain rules") ---------------------


@dataclass(frozen=True)
class Event:
    card: int  # index into CARD_IDS
    status: int  # index into STATUSES
    time: int  # index into TIMES
    phone: int  # -1 none, -2 invalid, else index into NATIONALS
    comment: int  # index into COMMENTS
    partner: int  # index into PARTNERS

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.card, self.status, self.time)

    @property
    def card_id(self) -> str:
        return CARD_IDS[self.card] if self.card < len(CARD_IDS) else f"K{self.card:05d}"

    @property
    def status_name(self) -> str:
        return STATUSES[self.status]

    @property
    def at(self) -> datetime:
        return TIMES[self.time]

    @property
    def e164(self) -> str | None:
        return "+971" + NATIONALS[self.phone] if self.phone >= 0 else None

    @property
    def stored_comment(self) -> str | None:
        return COMMENTS[self.comment][1]

    @property
    def reason(self) -> str | None:
        return COMMENTS[self.comment][2] if self.status_name == "DELIVERY_EXCEPTION" else None


def model_state(events: Iterable[Event]) -> tuple[dict[str, tuple], list[tuple]]:
    """(cards, history) as README "Domain rules" defines them, in the shape `db_state` reads."""
    unique: dict[tuple[int, int, int], Event] = {}
    for ev in events:
        unique.setdefault(ev.key, ev)
    by_card: dict[str, list[Event]] = {}
    for ev in unique.values():
        by_card.setdefault(ev.card_id.upper(), []).append(ev)  # stored upper-case
    cards: dict[str, tuple] = {}
    for card_id, evs in by_card.items():
        latest = max(evs, key=lambda e: (e.at, RANK[e.status_name]))
        phoned = [e for e in evs if e.e164]
        phone = max(phoned, key=lambda e: (e.at, RANK[e.status_name])).e164 if phoned else None

        def last(status: str, evs: list[Event] = evs) -> datetime | None:
            times = [e.at for e in evs if e.status_name == status]
            return max(times) if times else None

        cards[card_id] = (
            latest.status_name,
            latest.at,
            latest.stored_comment,
            latest.reason,
            phone,
            last("PICKED_UP"),
            last("DELIVERED"),
            last("RETURNED"),
            sum(1 for e in evs if e.status_name == "DELIVERY_EXCEPTION"),
        )
    history = sorted(
        (
            e.card_id.upper(),
            e.status_name,
            e.at,
            e.stored_comment,
            e.reason,
            e.e164,
            PARTNERS[e.partner],
        )
        for e in unique.values()
    )
    return cards, history


def db_state(conn: Any) -> tuple[dict[str, tuple], list[tuple]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT card_id, status::text, status_at, comment, reason, phone_hash, picked_up_at,"
            " delivered_at, returned_at, exception_count FROM card ORDER BY card_id"
        )
        cards = {r[0]: _number_of(tuple(r[1:]), 4) for r in cur.fetchall()}
        cur.execute(
            "SELECT card_id, status::text, occurred_at, comment, reason, phone_hash, partner"
            " FROM card_event ORDER BY 1, 2, 3"
        )
        history = sorted(_number_of(tuple(r), 5) for r in cur.fetchall())
    conn.commit()
    return cards, history


def _number_of(row: tuple, index: int) -> tuple:
    """The row with its stored phone hash turned back into the number (the tests know every
    number they use; the database does not: README "Privacy")."""
    from phone_support import phone_hash_of

    numbers = {phone_hash_of("+971" + n): "+971" + n for n in ALL_NATIONALS}
    value = row[index]
    return (*row[:index], numbers.get(value, value), *row[index + 1 :])


def table_count(conn: Any, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        n = cur.fetchone()[0]
    conn.commit()
    return int(n)


def reset(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "TRUNCATE card, card_event, event_copy, status_outbox, rejected_row, ingested_file, file_card_change RESTART IDENTITY"
        )
    conn.commit()


# --- rendering partner files ------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    encoding: int = 0
    newline: int = 0
    delimiter: int = 0
    final_newline: bool = True
    header_variant: int = 0
    column_order: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # card, phone, ts, comment, id, extra
    with_phone: bool = True
    with_comment: bool = True
    with_id: bool = False
    with_extra: bool = False
    blank_lines: bool = False
    quote_all: bool = False
    ts_format: int = 0
    card_quirk: int = 0  # 0 plain, 1 padded, 2 quoted


@dataclass
class Row:
    event: Event | None  # None: a row that must be rejected
    phone_form: int = 0
    ts_format: int | None = None  # None: the file's format
    status_word: int = 0


@dataclass
class PartnerFile:
    partner: int
    name: str
    style: Style
    rows: list[Row]
    status_column: bool = False
    invalid_phone_rows: int = field(default=0)

    def render(self) -> bytes:
        return render(self)


_COLUMNS = ("card", "phone", "ts", "comment", "id", "extra")


def render(f: PartnerFile) -> bytes:
    st = f.style
    present = {
        "card": True,
        "phone": st.with_phone,
        "ts": True,
        "comment": st.with_comment,
        "id": st.with_id,
        "extra": st.with_extra,
    }
    columns = [_COLUMNS[i] for i in st.column_order if present[_COLUMNS[i]]]
    if f.status_column:
        columns.insert(st.header_variant % (len(columns) + 1), "status")
    names = [HEADER_NAMES[c][st.header_variant % len(HEADER_NAMES[c])] for c in columns]
    newline = NEWLINES[st.newline]
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=DELIMITERS[st.delimiter],
        lineterminator=newline,
        quoting=csv.QUOTE_ALL if st.quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(names)
    for i, row in enumerate(f.rows):
        cells = []
        for c in columns:
            cells.append(_cell(c, row, st, i))
        writer.writerow(cells)
        if st.blank_lines and i % 3 == 1:
            out.write(newline)
    text = out.getvalue()
    if not st.final_newline:
        text = text[: -len(newline)]
    encoding = ENCODINGS[st.encoding]
    if encoding == "utf-16-le-nobom":
        return text.encode("utf-16-le")
    return text.encode(encoding)


def _cell(column: str, row: Row, st: Style, i: int) -> str:
    ev = row.event
    if ev is None:  # a broken row: bad card id or bad timestamp, alternating
        return {
            "card": "bad id!" if i % 2 else "ZYW8827",
            "ts": "2024-03-05T06:00:00Z" if i % 2 else "yesterday at noon",
            "phone": "",
            "comment": "broken row",
            "id": str(i),
            "extra": "x",
            "status": "Delivered",
        }[column]
    if column == "card":
        return (ev.card_id, f"  {ev.card_id} ", f'"{ev.card_id}"')[st.card_quirk]
    if column == "phone":
        if ev.phone == -1:
            return ""
        if ev.phone == -2:
            return INVALID_PHONES[row.phone_form % len(INVALID_PHONES)]
        return PHONE_FORMS[row.phone_form % len(PHONE_FORMS)](NATIONALS[ev.phone])
    if column == "ts":
        fmt = st.ts_format if row.ts_format is None else row.ts_format
        return TS_FORMATS[fmt % len(TS_FORMATS)](ev.at)
    if column == "comment":
        return COMMENTS[ev.comment][0]
    if column == "id":
        return str(i % 4)  # partner row ids repeat across files: provenance only
    if column == "extra":
        return "north"
    if column == "status":
        words = STATUS_WORDS[ev.status_name]
        return words[row.status_word % len(words)]
    raise AssertionError(column)


def encodable(f: PartnerFile) -> bool:
    """cp1252 cannot carry every character; such files are re-rendered as UTF-8."""
    try:
        f.render()
    except UnicodeEncodeError:
        return False
    return True


# --- ingestion helpers ------------------------------------------------------------------------


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def ingest_bytes(
    conn: Any,
    data: bytes,
    key: str,
    *,
    bucket: str | None = BUCKET,
    partner: str | None = None,
    cfg: Settings | None = None,
    **extra: Any,
) -> dict[str, Any]:
    from cardstatus.s3ingest import partner_from_key

    source = SourceInfo(
        key=key,
        partner=partner or partner_from_key(key),
        bucket=bucket,
        etag=etag(data) if bucket else None,
        size_bytes=len(data),
        **extra,
    )
    # The production entry point: a conflict with a concurrent file re-reads the file.
    report = ingest_retrying(conn, lambda: io.BytesIO(data), source, cfg or load_settings())
    count("files_ingested")
    return report


def assert_report_accounts_for_every_row(report: dict[str, Any]) -> None:
    c = report["counts"]
    assert report["outcome"] in {"applied", "duplicate_file", "rejected_file"}, report
    assert c["rows"] == c["accepted"] + c["duplicate"] + c["rejected"], report


# --- PII ------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-().+'\"\\/_]")


def full_phones_in(text: str, nationals: Sequence[str] = ALL_NATIONALS) -> list[str]:
    """National numbers that appear in text in any accepted form (separators ignored)."""
    squeezed = _SEPARATORS.sub("", text)
    return [n for n in nationals if n in squeezed]


# --- Lambda helpers ---------------------------------------------------------------------------


class FakeContext:
    function_name = "cardstatus-ingest"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cardstatus-ingest"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/cardstatus-ingest"
    log_stream_name = "test"

    def __init__(self, remaining_ms: Sequence[int] | int = 300_000) -> None:
        self._remaining = [remaining_ms] if isinstance(remaining_ms, int) else list(remaining_ms)
        self.calls = 0

    def get_remaining_time_in_millis(self) -> int:
        value = self._remaining[min(self.calls, len(self._remaining) - 1)]
        self.calls += 1
        return value


def s3_notification(bucket: str, key: str, size: int | None = None, **obj: Any) -> str:
    from urllib.parse import quote_plus

    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": quote_plus(key, safe="/"), "size": size, **obj},
                },
            }
        ]
    }
    return json.dumps(body)


def sqs_event(messages: Sequence[tuple[str, str, int]]) -> dict[str, Any]:
    """Lambda's SQS event for (message id, body, receive count) triples."""
    return {
        "Records": [
            {
                "messageId": mid,
                "receiptHandle": f"rh-{mid}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receives),
                    "SentTimestamp": "1709288400000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1709288400001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cardstatus-ingest",
                "awsRegion": "us-east-1",
            }
            for mid, body, receives in messages
        ]
    }


# --- fault injection --------------------------------------------------------------------------


def terminate(admin_conn: Any, pid: int) -> None:
    """pg_terminate_backend from a second connection, waiting until the backend is gone."""
    with admin_conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    admin_conn.commit()
    count("faults_injected")


class FaultPlan:
    """Kills the connection's backend right before its `kill_at`-th database call."""

    def __init__(self, admin_conn: Any, kill_at: int | None) -> None:
        self.admin = admin_conn
        self.kill_at = kill_at
        self.calls: list[str] = []
        self.killed = False

    def step(self, conn: Any, what: str) -> None:
        if len(self.calls) == self.kill_at and not self.killed:
            self.killed = True
            terminate(self.admin, conn.get_backend_pid())
        self.calls.append(what)


class FaultCursor(psycopg2.extensions.cursor):
    def execute(self, query: Any, vars: Any = None) -> Any:
        self.connection.plan.step(self.connection, "execute")
        return super().execute(query, vars)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> Any:
        self.connection.plan.step(self.connection, "copy")
        return super().copy_expert(sql, file, size)


class FaultConnection(psycopg2.extensions.connection):
    """A real connection whose statements and commit pass through a FaultPlan first."""

    plan: FaultPlan

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cursor_factory", FaultCursor)
        return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        self.plan.step(self, "commit")
        super().commit()


def fault_connection(url: str, plan: FaultPlan) -> Any:
    conn = psycopg2.connect(url, connection_factory=FaultConnection)
    conn.plan = plan
    return conn


class RaisingBody:
    """An S3 body that fails after `fail_after` bytes, like a connection reset mid-download."""

    def __init__(self, data: bytes, fail_after: int, exc: BaseException | None = None) -> None:
        self._data = io.BytesIO(data)
        self._fail_after = fail_after
        self._exc = exc or ConnectionResetError("Connection reset by peer (injected)")
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        if self._data.tell() >= self._fail_after:
            count("faults_injected")
            raise self._exc
        limit = self._fail_after - self._data.tell()
        return self._data.read(limit if size is None or size < 0 else min(size, limit))

    def close(self) -> None:
        self.closed = True


class PgProxy:
    """TCP front for the embedded server's Unix socket that can go down or cut connections."""

    def __init__(self, server_url: str) -> None:
        params = psycopg2.extensions.parse_dsn(server_url)
        host = params.get("host", "/tmp")
        self._unix = f"{host}/.s.PGSQL.{params.get('port', '5432')}"
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.up = True
        self.cut_after_bytes: int | None = None  # client→server bytes before cutting
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, dbname: str, user: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user} connect_timeout=3"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self._unix)
            with self._lock:
                self._pairs.append((client, upstream))
            sent = [0]
            threading.Thread(target=self._pump, args=(client, upstream, sent), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, sent: list[int] | None) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if sent is not None and self.cut_after_bytes is not None:
                    sent[0] += len(data)
                    if sent[0] > self.cut_after_bytes:
                        count("faults_injected")
                        break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def go_down(self) -> None:
        """Refuse new connections and drop the open ones (PostgreSQL down)."""
        self.up = False
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        count("faults_injected")

    def come_up(self) -> None:
        self.up = True

    def close(self) -> None:
        self._stopped = True
        self.go_down()
        self._listener.close()


def random_scenario(
    rng: Any, n_events: int, n_cards: int, files_per_type: int = 3, copies: int = 2
) -> tuple[list[Event], list[PartnerFile], list[tuple[int, str]]]:
    """A scenario like the hypothesis one, from a seeded random.Random (for bulk runs):
    every event in up to `copies` files, every file also under a second key."""
    events: dict[tuple[int, int, int], Event] = {}
    while len(events) < n_events:
        ev = Event(
            card=rng.randrange(n_cards),
            status=rng.randrange(4),
            time=rng.randrange(len(TIMES)),
            phone=rng.randrange(-2, len(NATIONALS)),
            comment=rng.randrange(len(COMMENTS)),
            partner=0,
        )
        events.setdefault(ev.key, ev)
    slots: dict[tuple[str, int], list[Row]] = {}
    for ev in events.values():
        for _ in range(rng.randint(1, copies)):
            slot = (ev.status_name, rng.randrange(files_per_type))
            slots.setdefault(slot, []).append(Row(ev, phone_form=rng.randrange(10)))
    files = []
    for (status, n), rows in sorted(slots.items()):
        rng.shuffle(rows)
        style = Style(
            encoding=rng.randrange(len(ENCODINGS)),
            newline=rng.randrange(len(NEWLINES)),
            delimiter=rng.randrange(len(DELIMITERS)),
            ts_format=rng.randrange(len(TS_FORMATS)),
            header_variant=rng.randrange(5),
        )
        name = f"acme bulk {n} - {FILE_TYPE_WORDS[status][0]}.csv"
        f = PartnerFile(0, name, style, rows)
        if not encodable(f):
            f.style = Style(**{**style.__dict__, "encoding": 0})
        files.append(f)
    deliveries = []
    for i, f in enumerate(files):
        deliveries.append((i, f"incoming/acme/{f.name}"))
        deliveries.append((i, f"incoming/acme/again/{f.name}"))
    rng.shuffle(deliveries)
    return list(events.values()), files, deliveries

"""`cardstatus smoke --api-url URL [--bucket B]`: the deployed (or local) stack, end to end.

One tiny file under the reserved partner `smoke`, with a fresh random card id and phone, goes
the whole way a partner's file goes, and is then taken back out:

    health   GET /health answers 200 (the API reaches the database)
    upload   PUT incoming/smoke/smoke-<run> - Delivered.csv into the bucket
    report   reports/<key>.json appears with outcome `applied` (the ingest function ran)
    by-id    GET /cards/<card> answers DELIVERED
    by-phone POST /cards/search {"user_phone"} answers the card (the phone stays out of URLs)
    void     POST /files/<file_id>/void answers voided
    gone     GET /cards/<card> answers 404 (the void took the card out again)

Each step prints one line with its time; exit 0 when all pass, 1 at the first failure (the
file is voided anyway when it was applied), 2 for a usage problem (no credentials, no bucket).

Every API call is signed with the caller's own AWS credentials (SigV4, service execute-api,
like `cardstatus console`: proxy.Signer), with `--api-key` as x-api-key; S3 is reached with the
same credentials. What the caller needs (docs/DEPLOY.md "Smoke test"): execute-api:Invoke on
the API (InvokePolicyArn) and on the void method (VoidPolicyArn, listed in api.voidCallers),
s3:PutObject on incoming/smoke/*, s3:GetObject on reports/incoming/smoke/*, and the bucket key.
Locally (`make run`) nothing checks the signature: any credentials do.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

SMOKE_PARTNER = "smoke"
DEFAULT_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 30.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class SmokeUsageError(Exception):
    """The smoke test cannot start as asked (no credentials, no bucket, bad URL)."""


class StepFailed(Exception):
    """A step's check did not hold."""


@dataclass
class SmokeConfig:
    api_url: str
    bucket: str
    s3_endpoint_url: str | None = None
    region: str = "us-east-1"
    profile: str | None = None
    api_key: str | None = None
    incoming_prefix: str = "incoming/"
    reports_prefix: str = "reports/"
    timeout_s: float = DEFAULT_TIMEOUT_S
    poll_s: float = 1.0


@dataclass
class SmokeRun:
    """What one run made: a fresh card id and phone, so runs never meet each other's data."""

    card_id: str = field(default_factory=lambda: f"SMOKE{secrets.token_hex(6).upper()}")
    # A valid UAE mobile number (05x + 7 digits) that no partner sends: +97150 555 xxxx.
    phone: str = field(default_factory=lambda: f"050555{secrets.randbelow(10_000):04d}")
    run_id: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y%m%dT%H%M%S"))
    file_id: int | None = None
    voided: bool = False

    def key(self, incoming_prefix: str) -> str:
        return (
            f"{incoming_prefix}{SMOKE_PARTNER}/smoke-{self.run_id}-{self.card_id} - Delivered.csv"
        )

    def csv(self) -> bytes:
        at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"Card ID,Phone,Timestamp\n{self.card_id},{self.phone},{at}\n".encode()


def is_local(api_url: str) -> bool:
    return (urlsplit(api_url).hostname or "") in LOCAL_HOSTS


class Api:
    """Signed JSON calls to the API (one method per verb the smoke needs)."""

    def __init__(self, cfg: SmokeConfig, sign: Callable[..., dict[str, str]]) -> None:
        self.base = cfg.api_url.rstrip("/")
        self.api_key = cfg.api_key
        self.sign = sign

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = self.base + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        signed = self.sign(method, url, data, headers)
        request = urllib.request.Request(url, data=data, headers=signed, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return {"raw": raw[:200].decode("utf-8", "replace")}


def _error(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{body['error'].get('code')}: {body['error'].get('message')}"
    return json.dumps(body)[:200]


class Smoke:
    def __init__(
        self,
        cfg: SmokeConfig,
        api: Api,
        s3: Any,
        out: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cfg = cfg
        self.api = api
        self.s3 = s3
        self.out = out
        self.sleep = sleep
        self.run = SmokeRun()

    # -- the steps ---------------------------------------------------------------------------
    def health(self) -> str:
        status, body = self.api.call("GET", "/health")
        if status != 200:
            raise StepFailed(f"GET /health answered {status} {_error(body)}")
        return "GET /health 200"

    def upload(self) -> str:
        key = self.run.key(self.cfg.incoming_prefix)
        self.s3.put_object(Bucket=self.cfg.bucket, Key=key, Body=self.run.csv())
        return f"s3://{self.cfg.bucket}/{key} (card {self.run.card_id})"

    def report(self) -> str:
        key = f"{self.cfg.reports_prefix}{self.run.key(self.cfg.incoming_prefix)}.json"
        report = self._wait(lambda: self._read_json(key), f"s3://{self.cfg.bucket}/{key}")
        self.run.file_id = report.get("file_id")
        if report.get("outcome") != "applied":
            raise StepFailed(
                f"outcome {report.get('outcome')} ({report.get('reason')}), expected applied"
            )
        return f"applied, file {self.run.file_id}"

    def by_id(self) -> str:
        status, body = self.api.call("GET", f"/cards/{quote(self.run.card_id)}")
        if status != 200 or body.get("status") != "DELIVERED":
            raise StepFailed(f"GET /cards/{self.run.card_id} answered {status} {_error(body)}")
        return f"GET /cards/{self.run.card_id} 200 DELIVERED"

    def by_phone(self) -> str:
        status, body = self.api.call("POST", "/cards/search", {"user_phone": self.run.phone})
        if status != 200 or body.get("card_id") != self.run.card_id:
            raise StepFailed(f"POST /cards/search answered {status} {_error(body)}")
        return f"POST /cards/search 200 {self.run.card_id} (phone …{self.run.phone[-4:]})"

    def void(self) -> str:
        status, body = self._void()
        if status != 200 or not body.get("voided"):
            raise StepFailed(
                f"POST /files/{self.run.file_id}/void answered {status} {_error(body)}"
            )
        return f"POST /files/{self.run.file_id}/void 200, {body.get('cards_deleted')} card deleted"

    def gone(self) -> str:
        status, _ = self.api.call("GET", f"/cards/{quote(self.run.card_id)}")
        if status != 404:
            raise StepFailed(f"GET /cards/{self.run.card_id} answered {status}, expected 404")
        return f"GET /cards/{self.run.card_id} 404"

    # -- running -----------------------------------------------------------------------------
    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("health", self.health),
            ("upload", self.upload),
            ("report", self.report),
            ("by-id", self.by_id),
            ("by-phone", self.by_phone),
            ("void", self.void),
            ("gone", self.gone),
        ]

    def __call__(self) -> int:
        started = time.monotonic()
        self.out(f"smoke {self.cfg.api_url} bucket {self.cfg.bucket} partner {SMOKE_PARTNER}")
        for name, step in self.steps():
            t0 = time.monotonic()
            try:
                detail = step()
            except Exception as exc:
                took = time.monotonic() - t0
                self.out(f"FAIL {name:<9} {took:6.2f}s  {type(exc).__name__}: {exc}")
                self._clean_up()
                self.out(f"smoke FAILED at {name} after {time.monotonic() - started:.1f}s")
                return 1
            self.out(f"ok   {name:<9} {time.monotonic() - t0:6.2f}s  {detail}")
        self.out(f"smoke passed in {time.monotonic() - started:.1f}s")
        return 0

    def _void(self) -> tuple[int, Any]:
        status, body = self.api.call(
            "POST", f"/files/{self.run.file_id}/void", {"reason": "cardstatus smoke test"}
        )
        self.run.voided = status == 200
        return status, body

    def _clean_up(self) -> None:
        """A failed run still takes its card out again (when its file was applied)."""
        if self.run.file_id is None or self.run.voided:
            return
        try:
            status, body = self._void()
            self.out(f"     clean-up: voided file {self.run.file_id}: {status} {_error(body)}")
        except Exception as exc:
            self.out(f"     clean-up: could not void file {self.run.file_id}: {exc}")

    def _read_json(self, key: str) -> dict[str, Any] | None:
        try:
            obj = self.s3.get_object(Bucket=self.cfg.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # 403 while the report is not there yet, with no ListBucket
            if "AccessDenied" in str(exc) or "Forbidden" in str(exc):
                return None
            raise
        return dict(json.loads(obj["Body"].read()))

    def _wait(self, probe: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + self.cfg.timeout_s
        while True:
            got = probe()
            if got:
                return got
            if time.monotonic() >= deadline:
                raise StepFailed(f"no {what} after {self.cfg.timeout_s:.0f}s")
            self.sleep(self.cfg.poll_s)


def _signer(cfg: SmokeConfig) -> Callable[..., dict[str, str]]:
    from cardstatus_dev.proxy import ProxyError, Signer

    try:
        return Signer(cfg.profile, cfg.region).headers
    except ProxyError as exc:
        hint = (
            " (locally any will do: export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)"
            if is_local(cfg.api_url)
            else ""
        )
        raise SmokeUsageError(f"{exc}{hint}") from None


def _s3_client(cfg: SmokeConfig) -> Any:
    import boto3

    session = boto3.Session(profile_name=cfg.profile, region_name=cfg.region)
    return session.client("s3", endpoint_url=cfg.s3_endpoint_url)


def config_from_args(args: Any) -> SmokeConfig:
    """The run's settings: flags, then environment, then what a local stack uses."""
    from cardstatus_dev.local import LOCAL_BUCKET, LOCAL_REGION, shared_settings
    from cardstatus_dev.proxy import region_of

    split = urlsplit(args.api_url)
    if split.scheme not in ("http", "https") or not split.netloc or split.query:
        raise SmokeUsageError("--api-url must be the API's base URL (https://…/<stage>)")
    local = is_local(args.api_url)
    bucket = args.bucket or os.environ.get("CARDSTATUS_BUCKET") or (LOCAL_BUCKET if local else "")
    if not bucket:
        raise SmokeUsageError("pass --bucket (the stack output BucketName) or $CARDSTATUS_BUCKET")
    endpoint = args.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3")
    if local and not endpoint:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:5000"
    region = (
        args.region
        or region_of(args.api_url)
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or (LOCAL_REGION if local else None)
    )
    if not region:
        raise SmokeUsageError("cannot tell the region: pass --region")
    prefixes = shared_settings()
    return SmokeConfig(
        api_url=args.api_url,
        bucket=bucket,
        s3_endpoint_url=endpoint,
        region=region,
        profile=args.profile,
        api_key=args.api_key or os.environ.get("CARDSTATUS_API_KEY") or None,
        incoming_prefix=prefixes.incoming_prefix,
        reports_prefix=prefixes.reports_prefix,
        timeout_s=args.timeout,
    )


def add_arguments(p: Any) -> Any:
    """The flags of `cardstatus smoke` (registered by cli.py); returns the parser."""
    p.add_argument("--api-url", required=True, help="the API's base URL (https://…/<stage>)")
    p.add_argument("--bucket", help="the stack's bucket (output BucketName; local: its bucket)")
    p.add_argument("--s3-endpoint-url", help="S3 endpoint (local: $AWS_ENDPOINT_URL or :5000)")
    p.add_argument("--profile", help="AWS profile whose credentials sign the calls")
    p.add_argument("--region", help="AWS region (default: from the URL, else the environment)")
    p.add_argument("--api-key", help="usage-plan API key, sent as x-api-key ($CARDSTATUS_API_KEY)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait (180)")
    return p


def run_smoke(args: Any) -> int:
    try:
        cfg = config_from_args(args)
        sign = _signer(cfg)
    except SmokeUsageError as exc:
        print(f"cardstatus smoke: {exc}", file=sys.stderr)
        return 2
    return Smoke(cfg, Api(cfg, sign), _s3_client(cfg), out=lambda s: print(s, flush=True))()

"""The phone hash key of local runs, and `cardstatus phone-key` (README "Privacy").

Locally the key ring is a JSON file, `.local/phone-key.json` (mode 0600), created on first
use by `use_phone_key` unless PHONE_KEY, PHONE_KEY_SECRET_ARN or PHONE_KEY_FILE already says
where it is. `cardstatus phone-key` shows which key versions the stored rows still need,
rotates the ring in two steps (`rotate` announces a next key, `promote` makes it current; the
key file, or the stack's secret with --secret-arn), retires a key no row needs any more, and
runs the backfill of phones stored in full. Key material is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

KEY_FILE_NAME = "phone-key.json"


def use_phone_key(home: Path) -> Path | None:
    """Point this process at the local key file (created on first use) unless a key source is
    already configured; returns the file used, None when another source is configured."""
    if any(os.environ.get(v) for v in ("PHONE_KEY", "PHONE_KEY_SECRET_ARN", "PHONE_KEY_FILE")):
        return None
    path = home / KEY_FILE_NAME
    if not path.exists():
        from cardstatus.phonehash import new_key_ring

        write_key_file(path, json.dumps(new_key_ring().to_json()))
    os.environ["PHONE_KEY_FILE"] = str(path)
    _reset()
    return path


def write_key_file(path: Path, text: str) -> None:
    """Write the ring readable by its owner only (atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(tmp, path)


def _reset() -> None:
    from cardstatus import config, phonehash

    config.reset_settings_cache()
    phonehash.reset_key_ring()


def _ring_text(secret_arn: str | None) -> str:
    from cardstatus.config import phone_key_settings
    from cardstatus.db import aws_client

    cfg = phone_key_settings()
    if secret_arn:
        client = aws_client("secretsmanager", cfg.aws_region)
        return str(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    if cfg.key_file:
        return Path(cfg.key_file).read_text(encoding="utf-8")
    raise SystemExit("phone-key: give --secret-arn, or use a key file (PHONE_KEY_FILE)")


def _store_ring(secret_arn: str | None, text: str) -> None:
    from cardstatus.config import phone_key_settings
    from cardstatus.db import aws_client

    cfg = phone_key_settings()
    if secret_arn:
        aws_client("secretsmanager", cfg.aws_region).put_secret_value(
            SecretId=secret_arn, SecretString=text
        )
    else:
        assert cfg.key_file
        write_key_file(Path(cfg.key_file), text)
    _reset()


def key_status(conn: Any) -> dict[str, Any]:
    """Versions in the ring (no key material), rows per version, and which keys can go."""
    from cardstatus.phonebackfill import key_versions
    from cardstatus.phonehash import key_ring

    ring = key_ring()
    rows = key_versions(conn)
    unhashed = rows.pop("unhashed")[0]
    needed = {v for per_table in rows.values() for v in per_table}
    return {
        **_versions(ring),
        "rows": {table: {str(v): n for v, n in per.items()} for table, per in rows.items()},
        "unhashed_rows": unhashed,
        "retirable": [k.version for k in ring.older if k.version not in needed],
        "missing": sorted(v for v in needed if v not in {k.version for k in ring.keys}),
    }


def _versions(ring: Any) -> dict[str, Any]:
    return {
        "current": ring.current.version,
        "next": ring.upcoming.version if ring.upcoming is not None else None,
        "older": [k.version for k in ring.older],
    }


def run(args: argparse.Namespace, conn: Any) -> dict[str, Any]:
    """One `cardstatus phone-key` action; returns what to print."""
    from cardstatus.phonebackfill import backfill_phones
    from cardstatus.phonehash import PhoneKeyError, parse_key_ring

    if args.action == "status":
        return key_status(conn)
    if args.action == "backfill":
        return {"hashed": backfill_phones(conn)}
    ring = parse_key_ring(_ring_text(args.secret_arn))
    if args.action == "rotate":
        new = ring.with_next()
    elif args.action == "promote":
        new = ring.promoted()
    else:  # retire
        if args.version not in key_status(conn)["retirable"]:
            raise PhoneKeyError(
                f"key version {args.version} cannot be retired: it is current or next, not in "
                "the ring, or rows still carry it (see `cardstatus phone-key status`)"
            )
        new = ring.without(args.version)
    _store_ring(args.secret_arn, json.dumps(new.to_json()))
    return _versions(new)


def add_parser(sub: Any, db_help: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "phone-key",
        help="phone hash key: status, rotate (add next), promote (next becomes current), "
        "retire VERSION, backfill (README 'Privacy')",
    )
    p.add_argument("action", choices=["status", "rotate", "promote", "retire", "backfill"])
    p.add_argument("version", nargs="?", type=int, help="retire: the key version to remove")
    p.add_argument("--secret-arn", help="rotate/retire the stack's secret instead of the key file")
    p.add_argument("--database-url", help=db_help)
    return p

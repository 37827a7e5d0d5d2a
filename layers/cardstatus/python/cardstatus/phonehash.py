"""Phones at rest (README "Privacy"): a keyed hash for lookups, the last 4 digits for display.

No table, report, event or log holds a full phone number. What is stored per phone:

- ``phone_hash``: hex HMAC-SHA-256 of the E.164 number under a secret key;
- ``phone_key``: the version of that key (smallint);
- ``phone_last4``: the last 4 digits, what answers show (``mask_last4``).

The key ring comes from one place per environment (``cardstatus.config.phone_key_settings``):
a Secrets Manager secret in AWS, a key file under ``.local/`` locally, an inline JSON value in
tests. It is read once per process (a Lambda cold start) and holds versioned keys::

    {"current": {"version": 2, "key": "..."}, "next": {"version": 3, "key": "..."},
     "previous": {"version": 1, "key": "..."}, "older": [...]}

New rows are hashed with ``current``; a lookup tries every key the ring holds: current, next,
previous, older (``lookup_hashes``). Rotation has two steps so that lookups never miss a row
while processes hold different rings: first a ``next`` key is added (readers learn it), then
it is promoted to ``current`` (writers use it; the old current becomes ``previous``). A key
can leave the ring only when no row carries its version any more (``cardstatus phone-key
status``): a hash cannot be re-keyed without the number, which is not stored (README
"Privacy", docs/DEPLOY.md "Phone hash key").
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cardstatus.config import phone_key_settings

MIN_KEY_CHARS = 32  # key material: at least 32 characters (a generated key has 43)
MASK_STARS = 8  # a masked phone is always 8 stars and the last 4 digits: '********9014'
COPY_MEMO_MAX = 4096  # distinct numbers remembered by one file's hasher (repeats are local)


class _Hmac:
    """HMAC-SHA-256 (RFC 2104) with the inner and outer pad states computed once: a hash is
    two ``sha256.copy()`` + updates (~1 µs), about half of ``hmac.HMAC.copy()``'s cost
    (ingestion hashes every row's number). Equal to ``hmac.new(key, msg, sha256)``
    (tests/test_phone_key.py)."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(hmac.trans_36))
        self._outer = hashlib.sha256(key.translate(hmac.trans_5C))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_BLOCK = 64  # SHA-256's block size


class PhoneKeyError(RuntimeError):
    """The key ring is missing or malformed (a deployment error: fail fast and clearly)."""


@dataclass(frozen=True, slots=True)
class PhoneKey:
    version: int
    key: str

    def hasher(self) -> _Hmac:
        """HMAC-SHA-256 under this key with the key schedule done once (see _Hmac)."""
        return _Hmac(self.key.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The current key (new hashes), the next one (announced, not yet used) and the older keys
    lookups still try, newest first."""

    current: PhoneKey
    older: tuple[PhoneKey, ...] = ()
    upcoming: PhoneKey | None = None

    @property
    def keys(self) -> tuple[PhoneKey, ...]:
        """Every key, in lookup order: current, next, previous, older."""
        announced = (self.upcoming,) if self.upcoming is not None else ()
        return (self.current, *announced, *self.older)

    @property
    def previous(self) -> PhoneKey | None:
        return self.older[0] if self.older else None

    def to_json(self) -> dict[str, Any]:
        """The secret's shape: current, previous and (when more are kept) older."""
        out: dict[str, Any] = {"current": _key_json(self.current), "previous": None}
        if self.upcoming is not None:
            out["next"] = _key_json(self.upcoming)
        if self.older:
            out["previous"] = _key_json(self.older[0])
        if len(self.older) > 1:
            out["older"] = [_key_json(k) for k in self.older[1:]]
        return out

    def with_next(self) -> KeyRing:
        """Rotation, step 1: a new random key (highest version + 1) announced as next."""
        if self.upcoming is not None:
            raise PhoneKeyError(f"key version {self.upcoming.version} is already next: promote it")
        version = max(k.version for k in self.keys) + 1
        return KeyRing(self.current, self.older, PhoneKey(version, new_key_material()))

    def promoted(self) -> KeyRing:
        """Rotation, step 2: next becomes current; the old current becomes previous."""
        if self.upcoming is None:
            raise PhoneKeyError("no next key to promote: run `phone-key rotate` first")
        return KeyRing(self.upcoming, (self.current, *self.older))

    def without(self, version: int) -> KeyRing:
        """The ring without an older key (its rows are gone); never the current or next one."""
        if version == self.current.version or (
            self.upcoming is not None and version == self.upcoming.version
        ):
            raise PhoneKeyError("the current or next key cannot be retired")
        if version not in {k.version for k in self.older}:
            raise PhoneKeyError(f"no key version {version} in the ring")
        return KeyRing(
            self.current, tuple(k for k in self.older if k.version != version), self.upcoming
        )


def _key_json(key: PhoneKey) -> dict[str, Any]:
    return {"version": key.version, "key": key.key}


def new_key_material() -> str:
    """43 URL-safe characters from 32 random bytes."""
    import secrets  # tooling only: the functions never make keys

    return secrets.token_urlsafe(32)


def new_key_ring() -> KeyRing:
    return KeyRing(PhoneKey(1, new_key_material()))


def _parse_key(raw: object, where: str) -> PhoneKey:
    if not isinstance(raw, dict):
        raise PhoneKeyError(f"phone key ring: {where} must be an object with version and key")
    version, key = raw.get("version"), raw.get("key")
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 32767:
        raise PhoneKeyError(f"phone key ring: {where}.version must be an integer 1-32767")
    if not isinstance(key, str) or len(key) < MIN_KEY_CHARS:
        raise PhoneKeyError(f"phone key ring: {where}.key must be at least {MIN_KEY_CHARS} chars")
    return PhoneKey(version, key)


def parse_key_ring(text: str) -> KeyRing:
    """A ring from its JSON text. Also accepts the flat ``{"version", "key"}`` the stack's
    generated secret starts with (one current key, nothing older). Never echoes key material."""
    try:
        data = json.loads(text)
    except ValueError:
        raise PhoneKeyError("phone key ring is not JSON") from None
    if not isinstance(data, dict):
        raise PhoneKeyError("phone key ring must be a JSON object")
    if "current" not in data:
        return KeyRing(_parse_key(data, "(flat)"))
    current = _parse_key(data["current"], "current")
    upcoming = _parse_key(data["next"], "next") if data.get("next") is not None else None
    older = []
    if data.get("previous") is not None:
        older.append(_parse_key(data["previous"], "previous"))
    for i, raw in enumerate(data.get("older") or ()):
        older.append(_parse_key(raw, f"older[{i}]"))
    ring = KeyRing(current, tuple(older), upcoming)
    versions = [k.version for k in ring.keys]
    if len(set(versions)) != len(versions):
        raise PhoneKeyError("phone key ring: two keys share a version")
    return ring


def _read_secret_string(arn: str, region: str | None) -> str:
    from cardstatus.db import aws_client  # botocore only where the secret is used

    client = aws_client("secretsmanager", region)
    return str(client.get_secret_value(SecretId=arn)["SecretString"])


@lru_cache(maxsize=1)
def key_ring() -> KeyRing:
    """The process's key ring, read once (a Lambda cold start); see the module docstring."""
    cfg = phone_key_settings()
    if cfg.inline:
        return parse_key_ring(cfg.inline)
    if cfg.secret_arn:
        return parse_key_ring(_read_secret_string(cfg.secret_arn, cfg.aws_region))
    if cfg.key_file:
        try:
            with open(cfg.key_file, encoding="utf-8") as handle:
                return parse_key_ring(handle.read())
        except FileNotFoundError:
            raise PhoneKeyError(f"phone key file {cfg.key_file} does not exist") from None
    raise PhoneKeyError(
        "no phone hash key: set PHONE_KEY_SECRET_ARN (AWS), PHONE_KEY_FILE (local) or "
        "PHONE_KEY (tests)"
    )


def reset_key_ring() -> None:
    """Tests and the CLI change the key configuration; the next use reads it again."""
    key_ring.cache_clear()
    _hashers.cache_clear()


@lru_cache(maxsize=1)
def _hashers() -> tuple[tuple[int, _Hmac], ...]:
    return tuple((k.version, k.hasher()) for k in key_ring().keys)


def _hex(base: _Hmac, e164: str) -> str:
    return base.hexdigest(e164.encode("ascii"))


def hash_phone(e164: str) -> tuple[str, int]:
    """(hex HMAC-SHA-256 of the E.164 number under the current key, that key's version)."""
    version, base = _hashers()[0]
    return _hex(base, e164), version


def lookup_hashes(e164: str) -> list[str]:
    """The number's hash under every key the ring holds: current first, then next (during a
    rotation), previous, older."""
    return [_hex(base, e164) for _version, base in _hashers()]


def last4(e164: str) -> str:
    """The last 4 digits of an E.164 number (what answers show)."""
    return e164[-4:]


def mask_last4(digits: str | None) -> str | None:
    """'9014' -> '********9014', the masked phone of every answer; None when absent."""
    if not digits:
        return None
    return "*" * MASK_STARS + digits


def copy_columns() -> Callable[[str], str]:
    """For ingestion's hot loop: E.164 -> COPY text 'hash<TAB>version<TAB>last4', with the
    current key's HMAC object prepared once; a number seen again recently (a card's other
    events, a customer's other cards) is not hashed again. The memo is bounded: when full it
    starts over, so memory stays flat whatever the file's size."""
    version, base = _hashers()[0]
    suffix = f"\t{version}\t"
    memo: dict[str, str] = {}
    digest = base.hexdigest

    def columns(e164: str) -> str:
        text = memo.get(e164)
        if text is None:
            text = digest(e164.encode("ascii")) + suffix + e164[-4:]
            if len(memo) >= COPY_MEMO_MAX:
                memo.clear()
            memo[e164] = text
        return text

    return columns


def versioned_hashes(e164: str) -> list[tuple[str, int]]:
    """(hash, key version) of the number under every key the ring holds (erasure records each)."""
    return [(_hex(base, e164), version) for version, base in _hashers()]

"""Phones as the database stores them (README "Privacy"): tests compare hashes, not numbers."""

from __future__ import annotations

from cardstatus.phonehash import hash_phone


def phone_hash_of(e164: str | None) -> str | None:
    """The phone_hash a number is stored as under the test key (None stays None)."""
    return hash_phone(e164)[0] if e164 else None

"""Benchmarks (README "Benchmarks"). Every bench process and its children hash phones with a
fixed bench key unless a key is configured (README "Privacy")."""

import os

if not any(os.environ.get(v) for v in ("PHONE_KEY", "PHONE_KEY_SECRET_ARN", "PHONE_KEY_FILE")):
    os.environ["PHONE_KEY"] = (
        '{"current": {"version": 1, "key": "bench-phone-key-0123456789abcdefghijklmn"}}'
    )

"""Fixtures of the reliability suite (docs/RELIABILITY.md). Helpers live in rel_support.py."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws
from rel_support import BUCKET, COUNTS, PARTNERS

# Bounded example counts, no per-example deadline (a real database answers each example).
# The long profile is what `make reliability` (--run-reliability) uses for the marked tests.
settings.register_profile(
    "reliability-default",
    max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "30")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "reliability-long",
    max_examples=int(os.environ.get("RELIABILITY_LONG_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.section("reliability counts")
        for name, value in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{name:>32}: {value}")


@pytest.fixture(autouse=True)
def _partners_share_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's reference models spread one card's events over both partners (acme, zeta),
    which since 12-06 only one ownership group may do (README "Card ownership"): the partners
    are one group here, so the models of merging, ordering, faults and voids stay what they
    test. Rows of a partner outside the owner's group: tests/test_ownership.py."""
    monkeypatch.setenv(
        "PARTNER_CONFIG", json.dumps({name: {"group": "reliability"} for name in PARTNERS})
    )


@pytest.fixture
def s3(db_url: str) -> Iterator[Any]:
    """moto S3 with a versioned bucket (the real one is versioned too)."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client

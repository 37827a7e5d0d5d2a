"""Fixtures of the reliability suite (docs/RELIABILITY.md). Helpers live in rel_support.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws
from rel_support import BUCKET, COUNTS

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


@pytest.fixture
def s3(db_url: str) -> Iterator[Any]:
    """moto S3 with a versioned bucket (the real one is versioned too)."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client

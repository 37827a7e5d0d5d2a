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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """tests/conftest.py skips items whose *keywords* contain "reliability", and the keywords
    of every test in this directory do (the directory's name). Only the marked tests are the
    long runs: undo that skip for the unmarked ones here."""
    here = os.path.dirname(__file__)
    for item in items:
        if not str(item.path).startswith(here) or item.get_closest_marker("reliability"):
            continue
        item.own_markers[:] = [
            m
            for m in item.own_markers
            if not (m.name == "skip" and str(m.kwargs.get("reason", "")).startswith("long reliab"))
        ]


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


@pytest.fixture
def ingest_app(s3: Any) -> Iterator[Any]:
    """functions/ingest/app.py with its connection and S3 client pointed at the test's."""
    from functions.ingest import app

    app.DB.reset_settings(None)
    app._s3 = s3
    yield app
    app.DB.discard()
    app._s3 = None

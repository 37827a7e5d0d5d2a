"""The pipeline (.github/workflows/pipeline.yml, docs/DEPLOY.md "The pipeline"): its stages in
order, AWS only through GitHub OIDC (no stored keys), prod behind the approval environment,
and the workflow valid against GitHub's schema (`make lint` also runs actionlint)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixture_paths import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"
ORDER = ["test", "synth", "diff", "deploy-dev", "smoke-dev", "deploy-prod", "smoke-prod"]


def _jobs() -> dict[str, Any]:
    return dict(yaml.safe_load(WORKFLOW.read_text())["jobs"])


def test_stages_run_in_order() -> None:
    jobs = _jobs()
    assert list(jobs) == ORDER
    for before, after in itertools.pairwise(ORDER):
        assert jobs[after]["needs"] == before, after


def test_aws_only_through_oidc_and_prod_behind_its_environment() -> None:
    text = WORKFLOW.read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "secrets." not in text
    for name, job in _jobs().items():
        uses_aws = any("configure-aws-credentials" in str(s.get("uses")) for s in job["steps"])
        assert uses_aws == (name not in ("test", "synth")), name
        if uses_aws:
            assert job["permissions"]["id-token"] == "write", name
            assert job.get("environment"), f"{name}: AWS jobs run in a GitHub environment"
    jobs = _jobs()
    assert jobs["deploy-prod"]["environment"] == "prod"  # required reviewers: the approval
    assert "cdk deploy -c env=prod" in str(jobs["deploy-prod"]["steps"])
    assert "cardstatus smoke" in str(jobs["smoke-dev"]["steps"])
    assert "cardstatus smoke" in str(jobs["smoke-prod"]["steps"])
    assert "cdk synth" in str(jobs["synth"]["steps"]) and "make test" in str(jobs["test"]["steps"])


def test_workflows_are_valid_against_the_github_schema() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    if not checker.exists() and not shutil.which("check-jsonschema"):
        pytest.fail("check-jsonschema is not installed (requirements-dev.txt; make venv)")
    files = sorted(str(p) for p in WORKFLOW.parent.glob("*.yml"))
    run = subprocess.run(
        [str(checker if checker.exists() else "check-jsonschema"), "--builtin-schema",
         "vendor.github-workflows", *files],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr

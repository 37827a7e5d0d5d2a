"""cdk-nag AwsSolutions: no finding (error or warning) without a written acknowledgement."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import Validations
from cdk_nag import AwsSolutionsChecks


def _findings(app: Any) -> list[str]:
    report = AwsSolutionsChecks().validate_scope(app)
    return [
        f"{v.severity} {v.rule_name} at {[r.construct_path for r in v.violating_resources]}"
        for v in report.violations
    ]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_unacknowledged_findings(synth: Any, env: str) -> None:
    # synth() already ran the plugin (it raises on an unacknowledged error); this also
    # catches warnings, which do not fail a synth.
    assert _findings(synth(env).app) == []


def test_no_unacknowledged_findings_with_private_api(private_api: Any) -> None:
    assert _findings(private_api.app) == []


def test_every_acknowledgement_has_a_specific_reason(dev: Any) -> None:
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acks: dict[str, str] = {}
    for construct in dev.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key and entry.data:
                acks.update({f"{construct.node.path} {k}": v for k, v in entry.data.items()})
    assert acks, "expected some acknowledgements"
    for where, reason in acks.items():
        assert isinstance(reason, str) and len(reason) >= 40, (where, reason)
    print(f"\n{len(acks)} cdk-nag acknowledgements:")
    for where, reason in sorted(acks.items()):
        print(f"  {where}: {reason}")

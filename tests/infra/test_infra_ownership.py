"""The stack passes card ownership groups and the card-id pattern to the functions (README
"Card ownership", "Configuration"; docs/DEPLOY.md context keys `partners`, `cardIdPattern`)."""

from __future__ import annotations

import json
from typing import Any

from conftest import Synthesised, synthesise


def _function_envs(synthesised: Synthesised) -> dict[str, dict[str, str]]:
    return {
        name: fn["Properties"]["Environment"]["Variables"]
        for name, fn in synthesised.of_type("AWS::Lambda::Function").items()
        if name.startswith("Functions")
    }


def test_groups_and_card_id_pattern_reach_every_function() -> None:
    overrides: dict[str, Any] = {
        "partners": {
            "acme": {"group": "emirates", "handover_to": ["speedy"]},
            "speedy": {"group": "emirates"},
        },
        "cardIdPattern": "ZYW[0-9]{4,7}",
    }
    envs = _function_envs(synthesise("dev", overrides))
    assert envs
    for env in envs.values():
        partners = json.loads(env["PARTNER_CONFIG"])
        assert partners["acme"]["group"] == "emirates"
        assert partners["acme"]["handover_to"] == ["speedy"]
        assert partners["speedy"]["group"] == "emirates"
        assert env["CARD_ID_PATTERN"] == "ZYW[0-9]{4,7}"


def test_no_card_id_pattern_by_default(dev: Synthesised) -> None:
    for env in _function_envs(dev).values():
        assert "CARD_ID_PATTERN" not in env

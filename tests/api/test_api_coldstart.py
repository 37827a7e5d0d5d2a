"""Cold start of the api (bench/coldstart.py measures it; these check the mechanisms, not
times): Powertools' resolver packages load lazily and the response models build on demand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
import functions.api.app as api
from functions.api import schemas
loaded = sorted(m for m in sys.modules if m.startswith("aws_lambda_powertools.event_handler."))
built = {name: getattr(schemas, name).__pydantic_complete__ for name in ("CardOut", "FileListOut")}
# Whatever the packages export is still there, loaded on demand.
from aws_lambda_powertools.event_handler import AppSyncResolver, Response
from aws_lambda_powertools.utilities.data_classes import SQSEvent
print(json.dumps({"loaded": loaded, "built": built, "appsync": AppSyncResolver.__name__,
                  "sqs": SQSEvent.__name__, "response": Response.__name__}))
"""


def _probe() -> dict[str, object]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/cardstatus/python")]),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_api_import_skips_the_resolvers_and_models_it_does_not_use() -> None:
    probe = _probe()
    loaded = probe["loaded"]
    assert isinstance(loaded, list)
    assert "aws_lambda_powertools.event_handler.api_gateway" in loaded
    for unused in ("appsync", "bedrock_agent", "vpc_lattice", "events_appsync"):
        assert not any(
            m.startswith(f"aws_lambda_powertools.event_handler.{unused}") for m in loaded
        )
    assert probe["built"] == {"CardOut": False, "FileListOut": False}
    assert (probe["appsync"], probe["sqs"], probe["response"]) == (
        "AppSyncResolver",
        "SQSEvent",
        "Response",
    )

"""Cold start of the api (bench/coldstart.py measures it; these check the mechanisms, not
times): Powertools' resolver packages load lazily, the response models build on demand and
the operations routers are imported when a request first needs them (lazy_routes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import json, sys
import functions.api.app as api
from functions.api import schemas
loaded = sorted(m for m in sys.modules if m.startswith("aws_lambda_powertools.event_handler."))
ops_loaded = sorted(m for m in OPS_MODULES if m in sys.modules)
settings_loaded = sorted(m for m in SETTINGS_MODULES if m in sys.modules)
from cardstatus.config import EventSettings, load_privacy_settings  # still there, on demand
from functions.api import ops_schemas
built = {name: getattr(schemas, name).__pydantic_complete__ for name in ("CardOut",)}
built["FileListOut"] = ops_schemas.FileListOut.__pydantic_complete__
# Whatever the packages export is still there, loaded on demand.
from aws_lambda_powertools.event_handler import AppSyncResolver, Response
from aws_lambda_powertools.utilities.data_classes import SQSEvent
print(json.dumps({"loaded": loaded, "ops_loaded": ops_loaded, "built": built,
                  "settings_loaded": settings_loaded,
                  "settings": [EventSettings.__name__, load_privacy_settings().retention_batch],
                  "appsync": AppSyncResolver.__name__,
                  "sqs": SQSEvent.__name__, "response": Response.__name__}))
"""


# Imported by the operations routes only.
OPS_MODULES = (
    "functions.api.ops_routes",
    "functions.api.file_routes",
    "functions.api.partner_routes",
    "functions.api.phone_conflict_routes",
    "functions.api.partner_schemas",
    "functions.api.ops_schemas",
    "cardstatus.ops",
    "cardstatus.partners",
    "cardstatus.filecards",
)


# Settings the api does not use (cardstatus.config imports them on first use).
SETTINGS_MODULES = ("cardstatus.event_config", "cardstatus.privacy_config")


def _run(code: str, **extra_env: str) -> dict[str, object]:
    return json.loads(_stdout(code, **extra_env)[-1])  # type: ignore[no-any-return]


def _stdout(code: str, **extra_env: str) -> list[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in extra_env},
        **{k: v for k, v in extra_env.items() if v},
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT), str(ROOT / "layers/cardstatus/python"), str(ROOT / "tools")]
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"OPS_MODULES = {OPS_MODULES!r}\nSETTINGS_MODULES = {SETTINGS_MODULES!r}\n{code}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


def test_api_import_skips_the_resolvers_and_models_it_does_not_use() -> None:
    probe = _run(_PROBE)
    loaded = probe["loaded"]
    assert isinstance(loaded, list)
    assert "aws_lambda_powertools.event_handler.api_gateway" in loaded
    for unused in ("appsync", "bedrock_agent", "vpc_lattice", "events_appsync"):
        assert not any(
            m.startswith(f"aws_lambda_powertools.event_handler.{unused}") for m in loaded
        )
    assert probe["ops_loaded"] == []
    assert probe["settings_loaded"] == []
    assert probe["settings"] == ["EventSettings", 500]
    assert probe["built"] == {"CardOut": False, "FileListOut": False}
    assert (probe["appsync"], probe["sqs"], probe["response"]) == (
        "AppSyncResolver",
        "SQSEvent",
        "Response",
    )


# pydantic's plugin search (importlib.metadata entry points) is skipped while plugins are
# disabled, as the stack has them; enabled, the real search runs (lazy_packages.py).
_PLUGIN_SEARCH = """
import json, sys
import functions.api.app as api
from cardstatus_dev.serve import LocalContext, build_event

status = api.handler(build_event("GET", "/get_card_status"), LocalContext())["statusCode"]
after_request = "importlib.metadata" in sys.modules
from pydantic.plugin import _loader
plugins = list(_loader.get_plugins())
print(json.dumps({"status": status, "after_request": after_request, "plugins": len(plugins),
                  "searched": "importlib.metadata" in sys.modules,
                  "group": _loader.PYDANTIC_ENTRY_POINT_GROUP}))
"""


@pytest.mark.parametrize("disabled", ["__all__", "1", "true"])
def test_no_plugin_search_while_pydantic_plugins_are_disabled(disabled: str) -> None:
    probe = _run(_PLUGIN_SEARCH, PYDANTIC_DISABLE_PLUGINS=disabled)
    assert probe == {
        "status": 400,  # validators built: get_plugins() was asked
        "after_request": False,
        "plugins": 0,
        "searched": False,
        "group": "pydantic",  # anything else of the module: the real one
    }


@pytest.mark.parametrize("setting", ["", "some-other-plugin"])
def test_the_plugin_search_runs_when_plugins_are_enabled(setting: str) -> None:
    probe = _run(_PLUGIN_SEARCH, PYDANTIC_DISABLE_PLUGINS=setting)
    assert probe["status"] == 400
    assert probe["after_request"] is True
    assert probe["searched"] is True


# The correlation id of the log lines is API Gateway's request id, set without Powertools'
# JMESPath engine (imported by the first use of its utilities, lazy_packages.py).
_CORRELATION = """
import json, sys
import functions.api.app as api
from cardstatus_dev.serve import LocalContext, build_event

for request_context in ({"requestId": "req-1"}, None, "not-an-object"):
    event = build_event("GET", "/get_card_status")
    event["requestContext"] = request_context
    api.handler(event, LocalContext())
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "jmespath")
from aws_lambda_powertools.utilities.jmespath_utils import query
found = query(data={"a": {"b": [1, 2]}}, envelope="a.b[-1]")
print(json.dumps({"loaded": loaded, "found": found,
                  "used": sorted(m for m in sys.modules if m.split(".")[0] == "jmespath")}))
"""


def test_log_lines_carry_the_request_id_without_jmespath() -> None:
    lines = _stdout(_CORRELATION)
    requests = [json.loads(line) for line in lines if '"message":"request"' in line]
    assert [r.get("correlation_id") for r in requests] == ["req-1", None, None]
    probe = json.loads(lines[-1])
    assert probe["loaded"] == []
    assert probe["found"] == 2  # the utilities work when something uses them
    assert "jmespath.parser" in probe["used"]


# A lookup, then requests no registered route answers: the first of those includes the
# operations routers, then is routed again (no database needed for these answers).
_FIRST_OPS_REQUEST = """
import json, sys
import functions.api.app as api
from cardstatus_dev.serve import LocalContext, build_event

def call(method, path):
    result = api.handler(build_event(method, path), LocalContext())
    return [result["statusCode"], json.loads(result["body"])["error"]["message"]]

answers = {"lookup": call("GET", "/get_card_status")}
after_lookup = sorted(m for m in OPS_MODULES if m in sys.modules)
answers["ops"] = call("GET", "/files/0")
answers["post"] = call("POST", "/files")
answers["none"] = call("GET", "/nowhere")
from cardstatus import model
from functions.api import snapstart
pattern = {"after_requests": model._free_text.cache_info().currsize}
phones = {"after_requests": "phonenumbers" in sys.modules}
snapstart.warm(api.app, api.DB)
pattern["after_warm_up"] = model._free_text.cache_info().currsize
phones["after_warm_up"] = "phonenumbers" in sys.modules
print(json.dumps({"answers": answers, "after_lookup": after_lookup, "pattern": pattern,
                  "phones": phones,
                  "after_ops": sorted(m for m in OPS_MODULES if m in sys.modules)}))
"""


def test_operations_routes_are_included_by_the_first_request_that_needs_them() -> None:
    from cardstatus.ops import MESSAGES

    probe = _run(_FIRST_OPS_REQUEST)
    assert probe["after_lookup"] == []
    assert probe["after_ops"] == sorted(OPS_MODULES)
    assert probe["answers"] == {
        "lookup": [400, "card_id or user_phone is required"],
        "ops": [400, MESSAGES["file_id"]],  # validated by the route, once included
        "post": [405, "POST is not allowed here; use GET"],
        "none": [404, "no such route"],
    }
    # The free-text phone pattern: not needed by these answers' log lines (too few digits),
    # compiled by SnapStart's warm-up (cardstatus.model builds it on first use).
    assert probe["pattern"] == {"after_requests": 0, "after_warm_up": 1}
    # The phone metadata: imported by the first lookup by phone (not these), or the warm-up.
    assert probe["phones"] == {"after_requests": False, "after_warm_up": True}


# The OpenAPI document lists the routes in their registration order, whether the
# operations routers were included by a request (here: one they answer, one they do not)
# or by the document itself.
_DOCUMENT = """
import functions.api.app as api
from cardstatus_dev.openapi import openapi_json
from cardstatus_dev.serve import LocalContext, build_event

for method, path in REQUESTS:
    api.handler(build_event(method, path), LocalContext())
print(json.dumps({"document": openapi_json()}))
"""


@pytest.mark.parametrize(
    "requests",
    [(), (("GET", "/stuck_cards?status=nope"),), (("GET", "/nowhere"), ("GET", "/cards"))],
)
def test_the_document_is_the_same_however_the_routers_were_included(
    requests: tuple[tuple[str, str], ...],
) -> None:
    probe = _run(f"import json\nREQUESTS = {requests!r}\n{_DOCUMENT}")
    assert probe["document"] == (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")

"""CDK entry point: `npx cdk synth` / `npx cdk deploy -c env=dev|prod`.

Synthesises one env-agnostic stack (no AWS credentials, no lookups, no Docker) and runs the
cdk-nag AwsSolutions checks on it: an unacknowledged finding fails the synth.
"""

from __future__ import annotations

import os

# Node 20 is past end of life for jsii; the warning is noise in every synth here.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.layers import layer_assets
from infra.settings import (
    SettingsError,
    cdk_json_context,
    load_settings,
    refuse_example_values,
)
from infra.stack import CardStatusStack

LAYER_BUILD_KEY = "cardstatus:layerBuild"


def build_app(
    context: dict[str, Any] | None = None,
    outdir: str | None = None,
    *,
    example_values_ok: bool = False,
) -> cdk.App:
    """The app with its stack and cdk-nag attached (not yet synthesised).

    Prod refuses cdk.json's example principals, accounts and alarm address (settings.py
    refuse_example_values); only the tests, which synthesise the shipped examples as they are,
    pass example_values_ok=True."""
    # cdk.json's context is the base; the CLI's context (cdk.json, -c key=value) wins over it.
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    settings = load_settings(app.node)
    if not example_values_ok:
        refuse_example_values(settings)
    layers = layer_assets(str(app.node.try_get_context(LAYER_BUILD_KEY) or "auto"))
    CardStatusStack(
        app,
        f"CardStatus-{settings.env_name}",
        settings=settings,
        layers=layers,
        description=f"cardstatus ({settings.env_name}): partner CSV ingestion and status API",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def main() -> None:
    try:
        app = build_app()
    except SettingsError as exc:  # a cdk.json mistake: say what, without a traceback
        raise SystemExit(f"cdk.json: {exc}") from None
    app.synth()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth`, or `python3 app.py` to write cdk.out without the CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent
# infra shares names with the runtime through mailwright.constants; the CDK
# CLI runs this file with only the repository root on the path.
sys.path.insert(0, str(REPO_ROOT / "functions"))

import aws_cdk as cdk  # noqa: E402

from infra.config import CONTEXT_KEY, parse_config  # noqa: E402
from infra.nag import add_checks  # noqa: E402
from infra.stack import MailwrightStack  # noqa: E402


def cdk_json_context() -> dict[str, Any]:
    """The context of cdk.json, which the CLI would otherwise pass in."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    return context


def main() -> None:
    """Synthesize the stack named in the `mailwright` context value."""
    # Context from the CLI (cdk.json, cdk.context.json, -c flags) overrides
    # these defaults; run bare, the app reads cdk.json itself.
    app = cdk.App(
        context=cdk_json_context(),
        outdir=None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out"),
    )
    # cdk-nag's AwsSolutions pack: a finding nobody acknowledged (with a reason) fails the synth.
    add_checks(app)
    config = parse_config(app.node.try_get_context(CONTEXT_KEY))
    # No env: the template is account- and region-agnostic, so synth needs no credentials.
    MailwrightStack(app, config.stack_name, config=config, description="mailwright: serverless email notifications")
    app.synth()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth`/`deploy` (`make synth`, `make deploy`), or `python3 app.py` without the CLI.

Settings: cdk.json's `mailwright` object, with `-c mailwright='{...}'` and
`-c mailwright.<key>=<value>` merged over it (infra/context.py). cdk.json's
placeholders are refused unless `-c mailwright_allow_placeholders=true` (as
`make synth` and the tests pass) says this synth will not be deployed; run
bare, `CDK_CONTEXT_JSON='{"mailwright_allow_placeholders": true}' python3 app.py`.
"""

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

from infra.config import CONTEXT_KEY, ConfigError  # noqa: E402
from infra.context import deployment_config  # noqa: E402
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
    defaults = cdk_json_context()
    app = cdk.App(
        context=defaults,
        outdir=None if os.environ.get("CDK_OUTDIR") else str(REPO_ROOT / "cdk.out"),
    )
    # cdk-nag's AwsSolutions pack: a finding nobody acknowledged (with a reason) fails the synth.
    add_checks(app)
    # A `-c mailwright=...` replaces cdk.json's whole object in the CLI's context: merge it over cdk.json's.
    try:
        config = deployment_config(defaults.get(CONTEXT_KEY, {}), app.node.get_all_context())
    except ConfigError as exc:
        # One line naming the setting, not a traceback: the CLI prints it above "Subprocess exited with error 1".
        sys.exit(f"mailwright: {exc}")
    # No env: the template is account- and region-agnostic, so synth needs no credentials.
    MailwrightStack(app, config.stack_name, config=config, description="mailwright: serverless email notifications")
    app.synth()


if __name__ == "__main__":
    main()

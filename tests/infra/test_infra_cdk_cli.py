"""The real CDK CLI against app.py: `-c` values arrive as strings, and cdk.json's placeholders are refused.

The in-process synth (tests/infra/synth.py) cannot show what the CLI does to
context values, so these run `npx --no-install cdk synth` from node_modules,
as `make synth` and `make deploy` do (installing node_modules with `npm ci`
first when a fresh clone has none).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailwright.constants import SEND_WORKER_HANDLER, Env
from tests.infra.synth import REPO_ROOT

pytestmark = pytest.mark.slow

CDK_BIN = REPO_ROOT / "node_modules" / ".bin" / "cdk"
# The settings of the README's deploy command (`MAILWRIGHT='{...}'`), exactly as written there.
README_SETTINGS = re.search(r"^ *MAILWRIGHT='([^']*)'$", (REPO_ROOT / "README.md").read_text(encoding="utf-8"), re.M)


@pytest.fixture(scope="module")
def cdk_cli() -> list[str]:
    """The pinned CDK CLI from node_modules (installed from package-lock.json when missing)."""
    if not CDK_BIN.exists():
        npm = shutil.which("npm")
        assert npm, "Node.js and npm are needed to run the CDK CLI (see the README's prerequisites)"
        subprocess.run(  # noqa: S603 - npm from PATH, the repository's own lockfile
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REPO_ROOT, check=True
        )
    npx = shutil.which("npx")
    assert npx, "npx (Node.js) is needed to run the CDK CLI"
    return [npx, "--no-install", "cdk"]


def _synth(cdk_cli: list[str], outdir: Path, *context: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # cdk.json's "python3 app.py" must find this interpreter's aws-cdk-lib.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_DISABLE_VERSION_CHECK": "1",
    }
    args = [*cdk_cli, "synth", "--quiet", "--no-notices", "-o", str(outdir)]
    for value in context:
        args += ["-c", value]
    return subprocess.run(  # noqa: S603 - the pinned CDK CLI on our own app
        args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def _max_concurrency(template: dict[str, Any]) -> dict[str, int]:
    """Each lane's event source maximum concurrency, through its worker's lane variable."""
    lanes = {
        logical_id: r["Properties"]["Environment"]["Variables"][Env.LANE]
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == SEND_WORKER_HANDLER
    }
    return {
        lanes[m["FunctionName"]["Ref"]]: m["ScalingConfig"]["MaximumConcurrency"]
        for m in _resources(template, "AWS::Lambda::EventSourceMapping")
        if m["FunctionName"]["Ref"] in lanes
    }


def _resources(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == resource_type]


def test_the_readme_deploy_context_synthesizes_merged_over_cdk_json(cdk_cli: list[str], tmp_path: Path) -> None:
    # Given the README's command: its JSON string as written, plus dotted keys for one lane
    assert README_SETTINGS, "the README's Deploy section sets MAILWRIGHT='{...}'"
    settings = json.loads(README_SETTINGS.group(1))
    result = _synth(
        cdk_cli,
        tmp_path,
        "mailwright=" + README_SETTINGS.group(1),
        "mailwright.lanes.bulk.max_concurrency=4",
        "mailwright.lanes.bulk.reserved_concurrency=null",
        "mailwright.unsubscribe.reserved_concurrency=7",
    )

    # Then the CLI synthesizes, with no placeholder flag
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((tmp_path / "Mailwright.template.json").read_text(encoding="utf-8"))
    workers = {
        props["Environment"]["Variables"][Env.LANE]: props
        for props in _resources(template, "AWS::Lambda::Function")
        if props.get("Handler") == SEND_WORKER_HANDLER
    }
    # The given keys took effect...
    assert {w["Environment"]["Variables"][Env.FROM_ADDRESS] for w in workers.values()} == {settings["sender"]}
    assert {w["Environment"]["Variables"][Env.POSTAL_ADDRESS] for w in workers.values()} == {settings["postal_address"]}
    (identity,) = _resources(template, "AWS::SES::EmailIdentity")
    assert identity["EmailIdentity"] == settings["domain"]
    (subscription,) = [s for s in _resources(template, "AWS::SNS::Subscription") if s["Protocol"] == "email"]
    assert subscription["Endpoint"] == settings["alarm_email"]
    assert "ReservedConcurrentExecutions" not in workers["bulk"]
    assert _max_concurrency(template) == {"critical": 4, "standard": 2, "bulk": 4}
    assert any(
        f.get("ReservedConcurrentExecutions") == 7
        for f in _resources(template, "AWS::Lambda::Function")
        if f.get("Handler", "").endswith("unsubscribe.handler")
    )
    # ...and everything else is still cdk.json's (the -c value did not replace the whole object).
    assert workers["critical"]["ReservedConcurrentExecutions"] == 4
    assert workers["standard"]["Timeout"] == 60
    assert json.loads(workers["critical"]["Environment"]["Variables"][Env.RATE_LIMITS])["marketing"]["limit"] == 2


def test_a_plain_synth_of_cdk_jsons_placeholders_is_refused(cdk_cli: list[str], tmp_path: Path) -> None:
    result = _synth(cdk_cli, tmp_path)

    assert result.returncode != 0
    # One line naming every key to set, not a traceback.
    assert "mailwright: refusing to deploy cdk.json's placeholder settings" in result.stderr
    assert "mailwright.sender (no-reply@example.com)" in result.stderr
    assert "mailwright.postal_address" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "Mailwright.template.json").exists()


def test_a_malformed_context_value_names_the_key(cdk_cli: list[str], tmp_path: Path) -> None:
    result = _synth(
        cdk_cli, tmp_path, 'mailwright={"sender": "no-reply@acme.io",}', "mailwright_allow_placeholders=true"
    )

    assert result.returncode != 0
    assert "mailwright: context value mailwright is not valid JSON: Expecting property name" in result.stderr
    assert "Traceback" not in result.stderr

"""cfn-lint on the synthesized templates, with the repository's .cfnlintrc.yaml (which says what it ignores and why)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.infra.synth import REPO_ROOT, Synthesized

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

# The cfn-lint console script, run by this interpreter (cfnlint has no __main__ module).
CFN_LINT = "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"


@pytest.mark.parametrize("variant", ["default", "domain"])
def test_cfn_lint_finds_nothing(synthesized: Synthesized, domain_synthesized: Synthesized, variant: str) -> None:
    synth = synthesized if variant == "default" else domain_synthesized
    template = synth.outdir / f"{synth.stack.artifact_id}.template.json"

    # As `make lint` runs it: errors and warnings (informational I-rules, such as "prefer Fn::Sub over the
    # Fn::Join CDK writes", are not part of cfn-lint's default set).
    result = subprocess.run(  # noqa: S603 - our own interpreter, our own file
        [sys.executable, "-c", CFN_LINT, "--", str(template)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr

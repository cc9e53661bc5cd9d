"""`mailwright local up --no-secondary`: SES alone, as a deployment without `providers` runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.config import load_config
from mailwright_tools.local.stack import LocalStack, LocalStackOptions
from mailwright_tools.state import StateDir
from tests.local.conftest import REPO, TEST_SES_RATE, Cli


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A local stack started with --no-secondary."""
    state = StateDir(tmp_path_factory.mktemp("state-no-secondary"))
    options = LocalStackOptions(
        state=state, config=load_config(REPO / "cdk.json"), ses_rate=TEST_SES_RATE, secondary=False
    )
    stack = LocalStack(options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def test_without_a_secondary_the_workers_run_ses_alone(local_stack: LocalStack, cli: Cli) -> None:
    assert local_stack.relay is None
    assert local_stack.state["providers"] == [] and local_stack.state["failover"] == {}
    assert "MAILWRIGHT_PROVIDERS" not in local_stack.lane_environment("critical")

    result = cli("providers", "status")

    assert result.exit_code == 1
    assert "has no secondary providers" in result.stderr
    # The SES switch still works: mail then waits for SES, as it would deployed.
    assert cli("local", "ses", "status", "--json").json()["state"] == "up"

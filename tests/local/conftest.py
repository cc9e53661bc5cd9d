"""Fixtures for the local stack tests: a stack on loopback in this process, and the CLI run against it.

moto keeps its state per process, so one local stack runs at a time: the
`local_stack` fixture is module-scoped and the demo test starts its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.config import load_config
from mailwright_tools.cli import app
from mailwright_tools.local.stack import LocalStack, LocalStackOptions
from mailwright_tools.state import StateDir
from tests.local.rabbitmq_broker import BrokerUnavailableError, RabbitMQBroker

REPO = Path(__file__).resolve().parents[2]
# Fast enough that the tests wait on nothing but the pipeline itself.
TEST_SES_RATE = 200.0


@dataclass
class CliResult:
    """What a CLI invocation printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as the one JSON value `--json` prints."""
        return json.loads(self.stdout)


Cli = Callable[..., CliResult]


def run_cli(state: StateDir, *args: str) -> CliResult:
    """Run `mailwright --state-dir STATE ARGS...` in this process."""
    result = CliRunner().invoke(app, ["--state-dir", str(state.root), *args], catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr)


def wait_until(predicate: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A running local stack (moto on 127.0.0.1, any free port), recorded in its own state directory."""
    state = StateDir(tmp_path_factory.mktemp("state"))
    stack = LocalStack(LocalStackOptions(state=state, config=load_config(REPO / "cdk.json"), ses_rate=TEST_SES_RATE))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def cli(local_stack: LocalStack) -> Cli:
    """Run the CLI against the module's local stack: `cli("status", request_id, "--json")`."""

    def invoke(*args: str) -> CliResult:
        return run_cli(local_stack.options.state, *args)

    return invoke


@pytest.fixture(scope="session")
def rabbitmq_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQBroker]:
    """A private RabbitMQ broker for the session (its own node, ports and directories); stopped at the end."""
    try:
        broker = RabbitMQBroker(tmp_path_factory.mktemp("rabbitmq"))
        broker.start()
    except BrokerUnavailableError as exc:
        pytest.fail(str(exc))
    try:
        yield broker
    finally:
        broker.stop()

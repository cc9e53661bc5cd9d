"""Fixtures for functional tests: a moto-backed stack provisioned like the CDK one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.config import MailwrightConfig, load_config
from mailwright_tools.provision import StackResources, provision
from tests.functional.harness import REPO, WorkerHarness


@pytest.fixture
def config() -> MailwrightConfig:
    """The settings in the repository's cdk.json."""
    return load_config(REPO / "cdk.json")


@pytest.fixture
def stack(config: MailwrightConfig) -> Iterator[StackResources]:
    """Queues, tables, bucket (with the shipped templates), SES identity and secret, in moto."""
    with mock_aws():
        yield provision(config, templates_dir=REPO / "templates", session=boto3.session.Session())


@pytest.fixture
def worker(
    config: MailwrightConfig, stack: StackResources, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], WorkerHarness]:
    """Make the worker of a lane: `worker("standard")`."""

    def make(lane: str = "standard") -> WorkerHarness:
        return WorkerHarness(config=config, resources=stack, lane=lane, monkeypatch=monkeypatch)

    return make


@pytest.fixture
def templates_dir() -> Path:
    """The shipped templates."""
    return REPO / "templates"

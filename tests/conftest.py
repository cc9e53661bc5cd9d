"""Test-wide safety (no test can reach a real AWS account; moto and Powertools state stay per test) and speed."""

from __future__ import annotations

import functools
import os
from typing import Any

import botocore.loaders
import botocore.session
import pytest
from aws_lambda_powertools import Metrics

from mailwright_tools.local import moto_atomic

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "POWERTOOLS_METRICS_NAMESPACE": "Mailwright",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

# Set at import so that clients created while collecting tests see them too.
os.environ.update(FAKE_AWS)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


# Conditional writes must be atomic, as DynamoDB's are, when tests run handlers in threads against moto.
moto_atomic.apply()


class _SearchPaths(list[str]):
    """A loader's search paths that take each path once (every boto3 session appends its own data path)."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> Any:
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)  # the list boto3 appends to
    return loader


# Every boto3 session the tests create (one or more per test, many per local stack) shares one botocore data
# loader, so each service's JSON model is read and parsed once per process instead of once per session (most
# of a functional test's CPU time went there). The models are the same files; only the cache is shared.
botocore.session.create_loader = _shared_loader


@pytest.fixture(autouse=True)
def _no_metrics_from_earlier_tests() -> None:
    """Powertools' Metrics instances share one metric set: what a test added without flushing stays out of the next."""
    Metrics(namespace=FAKE_AWS["POWERTOOLS_METRICS_NAMESPACE"]).clear_metrics()


# Under `make test` (pytest-xdist, one file per worker at a time) the files that run the local stack, the chaos
# runs and the CDK synth go first: started last, one of them would keep a worker busy while the other idles.
_FIRST = ("tests/local/", "tests/chaos/", "tests/browser/", "tests/infra/")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadfile`, tests/infra is one unit: one worker synthesizes each stack once, not each worker.

    The infra files share session-scoped synths (tests/infra/conftest.py); spread over both workers, both
    synthesized the same two stacks.
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class InfraTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "tests/infra" if nodeid.startswith("tests/infra/") else str(super()._split_scope(nodeid))

    return InfraTogether(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the slow directories first (a stable sort: the order within each stays as collected)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((i for i, prefix in enumerate(_FIRST) if path.startswith(prefix)), len(_FIRST))

    items.sort(key=rank)

"""What a send worker's cold start imports: only what sending needs (issue 14's cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mailwright.errors import ConfigurationError
from mailwright_tools.project import SOURCE_CHECKOUT

PROBE = """
import json, sys
import mailwright.handlers.send_worker
print(json.dumps(sorted(sys.modules)))
"""


def imported_by_the_send_worker(probe: str = PROBE, **extra: str) -> set[str]:
    """The modules loaded by importing the send worker in a fresh process, as Lambda runs it (tracing on)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            # Powertools' tracer is on inside Lambda (its task root set).
            "LAMBDA_TASK_ROOT": str(SOURCE_CHECKOUT / "functions"),
            "AWS_LAMBDA_FUNCTION_NAME": "mailwright-standard",
            "AWS_REGION": "us-east-1",
            "PYTHONPATH": str(SOURCE_CHECKOUT / "functions"),
            **extra,
        }
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=SOURCE_CHECKOUT
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_send_worker_loads_neither_other_functions_nor_untraced_libraries() -> None:
    modules = imported_by_the_send_worker()

    # The tracer patches the AWS SDK, the only library the functions call out through...
    assert "aws_xray_sdk.ext.botocore.patch" in modules
    # ...and not every library X-Ray supports (each a patch module to import at every cold start).
    assert not {m for m in modules if m.startswith("aws_xray_sdk.ext.") and m.endswith(".patch")} - {
        "aws_xray_sdk.ext.botocore.patch"
    }
    assert "sqlite3" not in modules
    # The raw SQS event is read as it comes: Powertools' event classes (loaded all together) stay unloaded.
    assert "aws_lambda_powertools.utilities.data_classes" not in modules
    # The other functions' services, and failover for a lane without a secondary, load where they are built.
    for other in ("feedback", "suppression", "preferences", "breaker", "failover", "status", "ingest_bridge"):
        assert f"mailwright.{other}" not in modules, other


def test_the_send_worker_needs_neither_boto3_nor_a_process_pool_nor_asyncio() -> None:
    modules = imported_by_the_send_worker()

    # Low-level clients come from botocore: boto3 would bring s3transfer and multiprocessing along.
    assert not {m for m in modules if m.split(".")[0] in ("boto3", "s3transfer", "multiprocessing")}
    # wrapt 1 (the X-Ray SDK's) does not import asyncio, which nothing else of the worker needs.
    assert "asyncio" not in modules


BUILT_AT_INIT = """
import json
import mailwright.handlers.send_worker as worker
print(json.dumps({"built": worker.service.cache_info().currsize}))
"""


def test_lambdas_init_phase_builds_the_send_service_once_and_no_invocation_does() -> None:
    """In the Lambda runtime (its API's address set) the import builds the service, as Lambda's Init phase."""
    from bench.common import lane_environment

    env = lane_environment(
        "standard", queue_url="https://sqs.us-east-1.amazonaws.com/1/mailwright-standard", prefix="t"
    )
    runtime = {"AWS_ACCESS_KEY_ID": "init", "AWS_SECRET_ACCESS_KEY": "init", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
    assert json.loads(_run(BUILT_AT_INIT, {**env, **runtime}))["built"] == 1

    # Without the runtime (tests, the local stack) the import builds nothing.
    assert json.loads(_run(BUILT_AT_INIT, env))["built"] == 0


def _run(probe: str, extra: dict[str, str]) -> str:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "MAILWRIGHT_"))
    }
    env.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": str(SOURCE_CHECKOUT / "functions"),
            **extra,
        }
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=SOURCE_CHECKOUT
    )
    return result.stdout.strip().splitlines()[-1]


def test_a_service_that_cannot_be_built_at_init_is_logged_and_left_to_the_first_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailwright.handlers import send_worker

    logged: list[str] = []

    class Logger:
        def exception(self, message: str) -> None:
            logged.append(message)

    def unbuildable() -> None:
        raise ConfigurationError("MAILWRIGHT_LANE is required")

    monkeypatch.setattr(send_worker, "service", unbuildable)
    monkeypatch.setattr(send_worker, "logger", Logger())
    send_worker.initialise()  # does not raise: the container starts, and the first invocation raises instead

    assert logged == ["the send service could not be built at init; the first invocation tries again"]

"""What a send worker's cold start imports: only what sending needs (issue 14's cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mailwright_tools.project import SOURCE_CHECKOUT

PROBE = """
import json, sys
import mailwright.handlers.send_worker
print(json.dumps(sorted(sys.modules)))
"""


def imported_by_the_send_worker() -> set[str]:
    """The modules loaded by importing the send worker in a fresh process, as Lambda runs it (tracing on)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            # Powertools' tracer is on inside Lambda (its task root set).
            "LAMBDA_TASK_ROOT": str(SOURCE_CHECKOUT / "functions"),
            "AWS_LAMBDA_FUNCTION_NAME": "mailwright-standard",
            "AWS_REGION": "us-east-1",
            "PYTHONPATH": str(SOURCE_CHECKOUT / "functions"),
        }
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True, cwd=SOURCE_CHECKOUT
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

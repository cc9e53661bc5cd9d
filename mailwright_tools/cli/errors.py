"""The last line of defence: any error a command did not handle becomes one line and a documented exit code.

Commands report what they expect (a request not found, bad input) themselves.
Whatever escapes them ends here instead of as a traceback:

* no way to reach AWS (no region, no credentials, an endpoint that does not
  answer, credentials AWS refuses) means there is no stack to talk to: exit 3,
  with what to do about it;
* anything else is `error: <type>: <message>`, exit 1.

`MAILWRIGHT_DEBUG=1` lets the traceback through, for a bug report.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

DEBUG_ENV = "MAILWRIGHT_DEBUG"
NO_STACK_HINT = "or start a local stack with `mailwright local up`"
# ClientError codes that mean the credentials, not the request, are the problem.
_REFUSED_CREDENTIALS = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId", "UnrecognizedClientException"}
)


def describe_unexpected(exc: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an error no command handled."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    from mailwright_tools.cli.output import EXIT_FAILED, EXIT_NO_TARGET

    if isinstance(exc, NoRegionError):
        return f"no AWS region: pass --region or set AWS_DEFAULT_REGION, {NO_STACK_HINT}", EXIT_NO_TARGET
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return (
            f"no AWS credentials: configure them (`aws configure`, AWS_PROFILE...), {NO_STACK_HINT}",
            EXIT_NO_TARGET,
        )
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return f"could not reach AWS ({exc}); check the network and --region, {NO_STACK_HINT}", EXIT_NO_TARGET
    if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _REFUSED_CREDENTIALS:
        return f"AWS refused the credentials ({exc}); renew them, {NO_STACK_HINT}", EXIT_NO_TARGET
    return f"{type(exc).__name__}: {exc}", EXIT_FAILED


class GuardedGroup(TyperGroup):
    """The top-level command group: runs the command, and turns an unhandled error into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        """Invoke the command; see the module docstring for what becomes of an error."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):
            raise  # exits, Ctrl-C and usage errors: typer reports them itself
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            from mailwright_tools.cli.output import fail

            message, code = describe_unexpected(exc)
            fail(message, code)

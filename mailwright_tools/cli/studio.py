"""`mailwright studio`: the template studio on loopback (mailwright_tools.studio)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import app, cli_context
from mailwright_tools.cli.output import EXIT_USAGE, console, fail, optional_project

if TYPE_CHECKING:
    from collections.abc import Callable

    from mailwright_tools.target import Target


def _sender(target: Target) -> Callable[[dict[str, Any]], str]:
    """Publishes a test request to the target's lane queues through the producer SDK."""
    from mailwright.sdk import Publisher

    publisher = Publisher(queue_urls=target.queues, session=target.session())

    def send(request: dict[str, Any]) -> str:
        (request_id,) = publisher.send_batch([request])
        return str(request_id)

    return send


@app.command("studio")
def studio(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free one).")] = 8025,
    templates_dir: Annotated[
        Path | None, typer.Option("--templates-dir", help="The templates directory (default: the project's).")
    ] = None,
) -> None:
    """Serve the template studio on 127.0.0.1: edit, preview, check and publish templates in a browser.

    Publishes to the local stack when one runs, else to the deployed stack
    (--stack-name, or the project's); without either it previews and checks only.
    """
    from mailwright_tools.cli.templates import _settings
    from mailwright_tools.project import ProjectNotFoundError
    from mailwright_tools.studio import Studio, start
    from mailwright_tools.target import TargetError, resolve_target

    found = optional_project(ctx)
    if templates_dir is None and found is not None:
        templates_dir = found.templates
    if templates_dir is not None and not templates_dir.is_dir():
        fail(f"{templates_dir} is not a directory", EXIT_USAGE)
    options = cli_context(ctx)
    store = None
    sender = None
    where = "no stack: previews and checks only"
    try:
        target = resolve_target(
            options.state, stack_name=options.stack_name, region=options.region, project_dir=options.project_dir
        )
    except (TargetError, ProjectNotFoundError) as exc:
        console().print(f"[yellow]{exc}[/]: publishing is off")
    else:
        if target.templates_bucket:
            from mailwright.adapters.template_store import S3TemplateStore

            store = S3TemplateStore(target.session().client("s3"), target.templates_bucket)
            where = f"publishes to {target.describe()}"
            sender = _sender(target)
    postal, base_url = _settings(found)
    try:
        server = start(
            Studio(templates_dir, store, postal_address=postal, base_url=base_url, target=where, sender=sender),
            port=port,
        )
    except OSError as exc:
        fail(f"cannot listen on 127.0.0.1:{port}: {exc}", EXIT_USAGE)
    console().print(f"template studio at [bold]{server.base_url}[/] ({where}); Ctrl-C stops it")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()

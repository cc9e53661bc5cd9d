"""`mailwright producers add|list|revoke|rotate`: the producers' API keys, on the deployed or the local stack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from mailwright_tools.cli.app import JsonOption, app
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, fail, resolve

if TYPE_CHECKING:
    from mailwright_tools.producers import IssuedKey, ProducerAdmin

producers_app = typer.Typer(
    help="Producers of the HTTPS API: their API keys (each producer is declared, with its usage plan, in "
    "api.producers in context). A key is shown once. Works on the local stack too.",
    no_args_is_help=True,
)
app.add_typer(producers_app, name="producers")

ProducerArgument = Annotated[str, typer.Argument(help="A producer declared in api.producers.")]


def _admin(ctx: typer.Context) -> tuple[ProducerAdmin, str]:
    """The stack's producer admin, after deleting keys whose rotation overlap ended (if a schedule could not)."""
    from mailwright_tools.producers import ProducerAdmin, ProducersError

    target = resolve(ctx)
    try:
        admin = ProducerAdmin.for_target(target)
    except ProducersError as exc:
        fail(str(exc))
    try:
        swept = admin.sweep()
    except _errors() as exc:
        fail(f"could not read the producers' keys: {exc}")
    if swept:
        console().print(f"deleted {len(swept)} key(s) whose rotation overlap ended: {', '.join(swept)}")
    return admin, target.describe()


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def _when(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if epoch else "-"


def _issued(issued: IssuedKey, where: str, json_output: bool) -> None:
    if json_output:
        emit_json({"target": where, **issued.as_dict()})
        return
    out = console()
    out.print(f"producer {issued.producer} ({where}): new API key {issued.api_key_id}")
    out.print(f"  x-api-key: [bold]{issued.value}[/]")
    out.print("  [yellow]shown once: store it in the producer's secret store now[/]")
    if issued.api_url:
        out.print(f"  POST {issued.api_url.rstrip('/')}/v1/messages with header x-api-key")
    for key in issued.retiring:
        out.print(f"  old key {key.api_key_id} stops working at {_when(key.retires_at)}")


@producers_app.command("add")
def add(ctx: typer.Context, producer: ProducerArgument, json_output: JsonOption = False) -> None:
    """Issue the first API key of a declared producer and print it (once)."""
    from mailwright_tools.producers import ProducersError

    admin, where = _admin(ctx)
    try:
        issued = admin.add(producer)
    except ProducersError as exc:
        fail(str(exc), EXIT_USAGE)
    except _errors() as exc:
        fail(f"could not issue a key: {exc}")
    _issued(issued, where, json_output)


@producers_app.command("rotate")
def rotate(
    ctx: typer.Context,
    producer: ProducerArgument,
    overlap_hours: Annotated[
        float,
        typer.Option(
            "--overlap-hours",
            min=0,
            help="How long the old key keeps working (0: it stops now). An EventBridge Scheduler schedule deletes "
            "it then.",
        ),
    ] = 24.0,
    json_output: JsonOption = False,
) -> None:
    """Issue a new API key and print it (once); the old key keeps working for the overlap."""
    from mailwright_tools.producers import NoKeysError, ProducersError

    admin, where = _admin(ctx)
    try:
        issued = admin.rotate(producer, overlap_seconds=overlap_hours * 3600)
    except NoKeysError as exc:
        fail(str(exc), EXIT_FAILED)
    except ProducersError as exc:
        fail(str(exc), EXIT_USAGE)
    except _errors() as exc:
        fail(f"could not rotate the key: {exc}")
    _issued(issued, where, json_output)


@producers_app.command("revoke")
def revoke(
    ctx: typer.Context,
    producer: ProducerArgument,
    key: Annotated[str | None, typer.Option("--key", help="Only this key id (default: every key).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Delete a producer's API keys (or one) at once: API Gateway refuses them within seconds."""
    from mailwright_tools.producers import NoKeysError, ProducersError

    admin, where = _admin(ctx)
    try:
        revoked = admin.revoke(producer, api_key_id=key)
    except NoKeysError as exc:
        fail(str(exc), EXIT_FAILED)
    except ProducersError as exc:
        fail(str(exc), EXIT_USAGE)
    except _errors() as exc:
        fail(f"could not revoke: {exc}")
    if json_output:
        emit_json({"target": where, "producer": producer, "revoked": revoked})
    else:
        console().print(f"producer {producer} ({where}): revoked {', '.join(revoked)}")


@producers_app.command("list")
def list_producers(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the declared producers: their usage plans (rate, burst, quota) and keys (never their values)."""
    from rich.table import Table

    admin, where = _admin(ctx)
    try:
        producers = admin.describe()
    except _errors() as exc:
        fail(f"could not list the producers: {exc}")
    if json_output:
        emit_json({"target": where, "producers": [producer.as_dict() for producer in producers]})
        return
    out = console()
    if not producers:
        out.print(f"no producers declared ({where}): add them to api.producers in context and deploy")
        return
    table = Table("producer", "rate/s", "burst", "quota", "keys", title=f"Producers ({where})")
    for producer in producers:
        quota = f"{producer.quota_limit}/{(producer.quota_period or '').lower()}" if producer.quota_limit else "-"
        keys = "\n".join(
            f"{key.api_key_id} since {_when(key.created_at)}"
            + (f", retires {_when(key.retires_at)}" if key.retires_at else "")
            + ("" if key.enabled else " (disabled)")
            for key in producer.keys
        )
        rate = f"{producer.rate_limit:g}" if producer.rate_limit is not None else "-"
        burst = str(producer.burst_limit) if producer.burst_limit is not None else "-"
        table.add_row(producer.name, rate, burst, quota, keys or "none")
    out.print(table)

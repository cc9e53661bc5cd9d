"""`mailwright local up` and `mailwright local demo`."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, cli_context, local_app
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, err_console, fail, project

if TYPE_CHECKING:
    from mailwright_tools.local.stack import LocalStack
    from mailwright_tools.project import Project
    from mailwright_tools.state import StateDir

PortOption = Annotated[int, typer.Option("--port", help="Port of the local endpoint on 127.0.0.1 (0: any free port).")]
SesRateOption = Annotated[
    float | None,
    typer.Option(
        "--ses-rate", help="SES send rate (emails/s) the workers share; default: cdk.json's ses_max_send_rate."
    ),
]
TemplatesDirOption = Annotated[
    Path | None, typer.Option("--templates-dir", help="The templates to upload (default: the project's templates/).")
]
SecondaryOption = Annotated[
    bool,
    typer.Option(
        "--secondary/--no-secondary",
        help="Run an SMTP server on loopback as the secondary provider that critical and standard mail fail over "
        "to while SES is down (`mailwright local ses down`); --no-secondary: SES alone.",
    ),
]
WebhookOption = Annotated[
    list[str] | None,
    typer.Option(
        "--webhook",
        help="Deliver signed webhooks of every published detail-type to this URL (repeatable; loopback http is "
        "allowed locally). Secrets: webhook_secrets in .mailwright/local.json.",
    ),
]
EventsOption = Annotated[
    str | None,
    typer.Option(
        "--events",
        help='Detail-types to put on the bus: "all" or a comma-separated list (default: cdk.json\'s outcome_events).',
    ),
]


def _parse_events(raw: str | None) -> tuple[str, ...] | None:
    """`--events`: None (cdk.json's), "all", or a comma-separated list of detail-types; exits 2 on a bad one."""
    from mailwright.constants import OUTCOME_DETAIL_TYPES

    if raw is None:
        return None
    if raw.strip() == "all":
        return OUTCOME_DETAIL_TYPES
    chosen = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in chosen if name not in OUTCOME_DETAIL_TYPES]
    if unknown:
        fail(
            f"--events: unknown detail-types {', '.join(unknown)}; known: {', '.join(OUTCOME_DETAIL_TYPES)}", EXIT_USAGE
        )
    return chosen


def _start_stack(
    state: StateDir,
    found: Project,
    *,
    port: int,
    ses_rate: float | None,
    templates_dir: Path | None,
    secondary: bool = True,
    rabbitmq_url: str = "",
    rabbitmq_queue: str = "",
    webhooks: list[str] | None = None,
    events: tuple[str, ...] | None = None,
    digest_window: int | None = None,
) -> LocalStack:
    from infra.config import ConfigError
    from mailwright_tools.local.stack import LocalStack, LocalStackOptions
    from mailwright_tools.state import live_local_stack

    running = live_local_stack(state)
    if running is not None:
        fail(
            f"a local stack is already running (pid {running['pid']}, {running['endpoint_url']}); "
            f"stop it with Ctrl-C, or use another --state-dir"
        )
    if ses_rate is not None and not ses_rate > 0:
        fail("--ses-rate must be positive", EXIT_USAGE)
    rabbitmq_url, rabbitmq_queue = _rabbitmq_options(rabbitmq_url, rabbitmq_queue)
    try:
        config = found.config()
    except (OSError, ConfigError) as exc:
        fail(f"{found.cdk_json}: {exc}")
    from mailwright_tools.local.hearing import local_webhooks

    try:
        local_webhooks(webhooks or (), ())  # a URL the stack may not call stops it before it starts
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    stack = LocalStack(
        LocalStackOptions(
            state=state,
            config=config,
            port=port,
            ses_rate=ses_rate,
            templates_dir=templates_dir or found.templates,
            secondary=secondary,
            rabbitmq_url=rabbitmq_url,
            rabbitmq_queue=rabbitmq_queue,
            outcome_events=events,
            webhooks=tuple(webhooks or ()),
            digest_window=digest_window,
        )
    )
    try:
        stack.start()
    except OSError as exc:
        fail(f"could not start the local stack: {exc}")
    return stack


def _rabbitmq_options(url: str, queue: str) -> tuple[str, str]:
    """The RabbitMQ URL and queue for LocalStackOptions; a URL that is not amqp:// is bad input (exit 2)."""
    from mailwright_tools.local.rabbitmq import DEFAULT_QUEUE, RabbitMQSourceSettings, RabbitMQUrlError

    if not url:
        if queue:
            fail("--rabbitmq-queue needs --rabbitmq URL", EXIT_USAGE)
        return "", DEFAULT_QUEUE
    try:
        RabbitMQSourceSettings(url=url, queue=queue or DEFAULT_QUEUE)
    except RabbitMQUrlError as exc:
        fail(f"--rabbitmq: {exc}", EXIT_USAGE)
    return url, queue or DEFAULT_QUEUE


def _stop_on_sigterm() -> None:
    # A `kill` stops the stack as cleanly as Ctrl-C does.
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


@local_app.command("up")
def up(
    ctx: typer.Context,
    port: PortOption = 0,
    ses_rate: SesRateOption = None,
    templates_dir: TemplatesDirOption = None,
    secondary: SecondaryOption = True,
    rabbitmq: Annotated[
        str,
        typer.Option(
            "--rabbitmq",
            metavar="URL",
            help="Drain a RabbitMQ queue into the lanes through the ingest bridge, as the Amazon MQ event source "
            "mapping would: amqp://USER:PASS@HOST:PORT/ (a virtual host after the slash).",
        ),
    ] = "",
    rabbitmq_queue: Annotated[
        str, typer.Option("--rabbitmq-queue", help="The queue --rabbitmq drains (default: mailwright-requests).")
    ] = "",
    webhook: WebhookOption = None,
    events: EventsOption = None,
    digest_window: Annotated[
        int | None,
        typer.Option(
            "--digest-window",
            metavar="SECONDS",
            min=1,
            max=86400,
            help="Override every digest template's window (template.json `digest.window_seconds`), so a digest "
            "can be tried in seconds.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Start the local stack on loopback and run its functions until Ctrl-C.

    Writes .mailwright/local.json (endpoint, region, queues, tables...) so other
    commands and producers find it. Point a producer at it with
    AWS_ENDPOINT_URL and any credentials.
    """
    state = cli_context(ctx).state
    found = project(ctx)
    _stop_on_sigterm()
    stack = _start_stack(
        state,
        found,
        port=port,
        ses_rate=ses_rate,
        templates_dir=templates_dir,
        secondary=secondary,
        rabbitmq_url=rabbitmq,
        rabbitmq_queue=rabbitmq_queue,
        webhooks=webhook,
        events=_parse_events(events),
        digest_window=digest_window,
    )
    try:
        if json_output:
            emit_json(stack.state)
        else:
            _print_banner(stack)
        _watch(stack, quiet=json_output)
    except KeyboardInterrupt:
        pass
    finally:
        if not json_output:
            err_console().print("stopping the local stack…")
        stack.stop()


def _print_banner(stack: LocalStack) -> None:
    from rich.panel import Panel
    from rich.table import Table

    state = stack.state
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("endpoint", state["endpoint_url"])
    for lane, url in state["queues"].items():
        table.add_row(f"{lane} queue", url)
    table.add_row("event bus", state["event_bus"])
    table.add_row("outcome events", ", ".join(state.get("outcome_events", [])) or "none")
    for name, hook in state.get("webhooks", {}).items():
        table.add_row(f"webhook {name}", f"{hook['url']} (secret {state['webhook_secrets'][name]})")
    table.add_row("outbox", f"{state['outbox']}/index.html")
    if state.get("unsubscribe_url"):
        table.add_row("unsubscribe", state["unsubscribe_url"])
    if state.get("status_api_url"):
        table.add_row("status API", f"{state['status_api_url']}/v1/messages/ID (unsigned on loopback)")
    if state.get("api_url"):
        table.add_row(
            "producers' API",
            f"POST {state['api_url']}/v1/messages, header x-api-key: `api_key` in {stack.options.state.local_json}",
        )
    if state.get("lambda_endpoint_url"):
        table.add_row("lanes", f"{state['lambda_endpoint_url']} (`mailwright lanes status|pause|resume`)")
    if state.get("secondary_smtp"):
        names = ", ".join(p["name"] for p in state.get("providers", []))
        table.add_row("secondary", f"{names}: SMTP on {state['secondary_smtp']} (`mailwright providers status`)")
    if state.get("ses_control_url"):
        table.add_row("SES outage", "`mailwright local ses down` / `mailwright local ses up`")
    if state.get("rabbitmq"):
        table.add_row("RabbitMQ", f"{state['rabbitmq']['queue']} on {state['rabbitmq']['url']} (into the bridge)")
    if stack.options.digest_window is not None:
        table.add_row("digest window", f"{stack.options.digest_window} s for every digest template")
    table.add_row("logs", state["logs"])
    table.add_row("SES rate", f"{state['ses_max_send_rate']:g} emails/s")
    out = console()
    out.print(Panel(table, title="mailwright local stack", subtitle="Ctrl-C to stop", expand=False))
    out.print(
        f"Producers: export AWS_ENDPOINT_URL={state['endpoint_url']} AWS_DEFAULT_REGION={state['region']} "
        "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    )
    out.print(
        "State lives in memory: suppressions, preferences, the message log and queued requests are lost when "
        "this stack stops (the outbox's files stay until the next start)."
    )


def _watch(stack: LocalStack, *, quiet: bool) -> None:
    """Wait for Ctrl-C, printing a line whenever the functions did something."""
    last: tuple[int, ...] = ()
    out = console()
    while True:
        time.sleep(1.0)
        if quiet:
            continue
        stats = {name: emulator.stats for name, emulator in stack.emulators.items()}
        now = tuple(s.invocations for s in stats.values())
        if stack.rabbitmq is not None:
            now += (stack.rabbitmq.stats.invocations,)
        if now == last or not any(now):
            continue
        last = now
        sent = sum(stack.mailbox.sent.values()) if stack.mailbox else 0
        sent += stack.relay.received_count if stack.relay is not None else 0
        parts = [
            f"{name}: {s.deleted} done" + (f", {s.failed_records} retried" if s.failed_records else "")
            for name, s in stats.items()
        ]
        if stack.rabbitmq is not None:
            r = stack.rabbitmq.stats
            parts.append(f"rabbitmq: {r.acked} forwarded" + (f", {r.requeued} requeued" if r.requeued else ""))
        out.print(f"[dim]{time.strftime('%H:%M:%S')}[/] sent {sent} · " + " · ".join(parts))


@local_app.command("demo")
def demo(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--count", min=1, help="How many requests to publish.")] = 1000,
    ses_rate: SesRateOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the request mix (the same mix for the same seed).")] = 1,
    timeout: Annotated[float, typer.Option("--timeout", help="Give up draining after this many seconds.")] = 600.0,
    port: PortOption = 0,
    templates_dir: TemplatesDirOption = None,
    secondary: SecondaryOption = True,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help='Detail-types the demo\'s own stack puts on the bus: "all" or a comma-separated list (default: '
            "cdk.json's outcome_events, as deployed). A running stack publishes what it was started with.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Publish COUNT requests of every kind through the producer SDK, drain, and account for each one.

    Uses the running local stack if there is one, else starts one in-process
    for the run. Exits 1 if any published request is unaccounted for. The
    report counts the outcome events a rule on the bus heard, by detail-type.
    """
    from mailwright_tools.local import demo as demo_lib
    from mailwright_tools.state import live_local_stack
    from mailwright_tools.target import local_target

    state = cli_context(ctx).state
    found = project(ctx)
    templates_dir = templates_dir or found.templates
    started = time.time()
    running = live_local_stack(state)
    stack = None
    if running is None:
        stack = _start_stack(
            state,
            found,
            port=port,
            ses_rate=ses_rate,
            templates_dir=templates_dir,
            secondary=secondary,
            events=_parse_events(events),
        )
        running = stack.state
    elif ses_rate is not None:
        fail("--ses-rate applies only when the demo starts its own stack; stop the running one first", EXIT_USAGE)
    target = local_target(running)
    session = target.session()
    try:
        report = _run_demo(
            demo_lib,
            target,
            session,
            stack=stack,
            count=count,
            seed=seed,
            timeout=timeout,
            templates_dir=templates_dir,
            started=started,
            show_progress=not json_output,
        )
    finally:
        if stack is not None:
            stack.stop()
    # A stack the demo started is gone now, with its state: ids and unsubscribe links need a running one.
    report["stack_stopped"] = stack is not None
    if json_output:
        emit_json(report)
    else:
        _print_report(report)
    if report["unaccounted"]:
        raise typer.Exit(EXIT_FAILED)


def _run_demo(
    demo_lib: Any,
    target: Any,
    session: Any,
    *,
    stack: LocalStack | None,
    count: int,
    seed: int,
    timeout: float,
    templates_dir: Path,
    started: float,
    show_progress: bool,
) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mailwright.templates import load_template_tree

    plan = demo_lib.build_plan(count, templates=load_template_tree(templates_dir), seed=seed)
    demo_lib.seed(plan, target, session)
    # A producer's view: a rule with an SQS target on the bus, subscribed before the first request.
    tap = demo_lib.EventTap(target, session)
    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        disable=not show_progress,
        transient=False,
    )
    with progress:
        tasks = {
            "published": progress.add_task("publishing", total=len(plan.items)),
            "processed": progress.add_task("processing", total=len(plan.items)),
        }

        def report_progress(stage: str, done: int, total: int) -> None:
            progress.update(tasks[stage], completed=done, total=total)

        published = demo_lib.publish(plan, target, session, templates_dir=templates_dir, progress=report_progress)
        publish_done = time.time()
        drained = stack.drained if stack is not None else (lambda: demo_lib.stack_idle(session, target))
        accounting = demo_lib.wait_for(
            target, session, published, timeout=timeout, drained=drained, progress=report_progress
        )
    finished = time.time()
    sqs = session.client("sqs")

    def pending() -> bool:
        # The stream's unread writes and the DLQs still announce; SES events deferred on the feedback queue
        # (they beat their request into the log) are not waited for, as the accounting above does not.
        return stack is not None and stack.hearing is not None and not stack.hearing.idle(sqs)

    try:
        heard = tap.settle(pending=pending)
    finally:
        tap.close()
    created = demo_lib.suppressions_since(target, session, started)
    configured = (
        stack.options.config.ses_max_send_rate if stack is not None else float(target.extra.get("ses_rate") or 0)
    )
    ses_rate = stack.config.ses_max_send_rate if stack is not None else configured
    outbox = Path(str(target.extra.get("outbox") or ""))
    return dict(
        demo_lib.build_report(
            published=published,
            accounting=accounting,
            started=started,
            publish_done=publish_done,
            finished=finished,
            suppressions=created,
            seeded_suppressions=len(plan.suppressed_addresses),
            ses_rate=ses_rate,
            configured_rate=configured,
            outbox=str(outbox / "index.html"),
            outbox_count=len(list(outbox.glob("*.eml"))) if outbox.is_dir() else 0,
            target=target,
            ses_events=_published_events(stack),
            outcome_events=heard,
            published_types=list(stack.state.get("outcome_events", [])) if stack is not None else None,
        )
    )


def _published_events(stack: LocalStack | None) -> dict[str, int]:
    """SES events the local mailbox published, by type (unknown for a stack in another process)."""
    if stack is None or stack.mailbox is None or stack.mailbox.events is None:
        return {}
    return dict(stack.mailbox.events.published)


def _print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    from mailwright.constants import OUTCOME_DETAIL_TYPES

    out = console()
    out.print()
    out.print(f"[bold]mailwright demo[/]: {report['published']} requests published to the {report['target']}")
    outcomes = Table(title="Where every request ended up", title_justify="left", show_edge=False)
    outcomes.add_column("state")
    outcomes.add_column("requests", justify="right")
    for state, number in report["outcomes"].items():
        outcomes.add_row(state, str(number))
    outcomes.add_row("in a DLQ", str(report["dlq"]))
    style = "bold red" if report["unaccounted"] else "bold green"
    outcomes.add_row(f"[{style}]unaccounted[/]", f"[{style}]{report['unaccounted']}[/]")
    out.print(outcomes)
    latency = Table(title="Publish → SES acceptance (seconds)", title_justify="left", show_edge=False)
    for column in ("lane", "sent", "p50", "p95", "p99"):
        latency.add_column(column, justify="left" if column == "lane" else "right")
    for lane, numbers in report["latency_s"].items():
        latency.add_row(
            lane, str(numbers["count"]), f"{numbers['p50']:.2f}", f"{numbers['p95']:.2f}", f"{numbers['p99']:.2f}"
        )
    out.print(latency)
    throughput = report["throughput"]
    rate = report["ses_rate"]
    out.print(
        f"Throughput: {throughput['sent']} emails sent in {throughput['seconds']:.1f} s = "
        f"{throughput['sent_per_second']:.1f}/s (SES rate {rate['per_second']:g}/s shared by all lanes)"
    )
    if rate["note"]:
        out.print(f"[yellow]Note:[/] {rate['note']}.")
    if report["ses_events"]:
        events = ", ".join(f"{kind} {n}" for kind, n in report["ses_events"].items())
        out.print(f"SES events published to the feedback topic: {events}")
    heard = ", ".join(f"{kind} {n}" for kind, n in report.get("outcome_events", {}).items()) or "none"
    out.print(f"Outcome events a rule on the bus heard (source mailwright), by detail-type: {heard}")
    published = report.get("outcome_events_published") or []
    if published and len(published) < len(OUTCOME_DETAIL_TYPES):
        out.print(
            f"  (the stack publishes {len(published)} detail-types, as cdk.json's outcome_events says; "
            "`--events all` shows every kind)"
        )
    created = ", ".join(f"{reason} {n}" for reason, n in report["suppressions_created"].items()) or "none"
    out.print(f"Suppressions created: {created} (of which seeded by the demo: {report['suppressions_seeded']} MANUAL)")
    duration = report["duration_s"]
    out.print(
        f"Took {duration['total']:.1f} s (publishing {duration['publish']:.1f} s, draining {duration['drain']:.1f} s)"
    )
    out.print(f"Outbox: {report['outbox']['path']} ({report['outbox']['emails']} emails)")
    if report["unaccounted"]:
        out.print(f"[bold red]Unaccounted request ids:[/] {', '.join(report['unaccounted_ids'])}")
    _print_next_steps(report)


EXAMPLE_LABELS = {
    "sent": "sent",
    "bounced": "sent, then bounced (bounce@simulator)",
    "suppressed": "suppressed",
    "rejected": "rejected: a template problem",
}


def _print_next_steps(report: dict[str, Any]) -> None:
    """The demo's closing lines: requests to follow with `status`, and what the stack's end means for them."""
    out = console()
    shown = {key: report["examples"][key] for key in EXAMPLE_LABELS if key in report.get("examples", {})}
    if report.get("stack_stopped"):
        out.print(
            "The demo's stack stopped when it finished, and its state with it: the outbox's unsubscribe links "
            "no longer answer, and the requests below are gone."
        )
        out.print(
            "To keep a stack running: `mailwright local up` (until Ctrl-C), then `mailwright local demo` in "
            "another terminal; it uses that stack. Then follow a request:"
        )
    elif shown:
        out.print("The stack keeps running (and the outbox's unsubscribe links work while it does). Follow a request:")
    width = max(map(len, shown.values()), default=0)
    for key, request_id in shown.items():
        out.print(f"  mailwright status {request_id:<{width}}  # {EXAMPLE_LABELS[key]}")

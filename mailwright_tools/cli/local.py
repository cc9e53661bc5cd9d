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


def _start_stack(
    state: StateDir, found: Project, *, port: int, ses_rate: float | None, templates_dir: Path | None
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
    try:
        config = found.config()
    except (OSError, ConfigError) as exc:
        fail(f"{found.cdk_json}: {exc}")
    stack = LocalStack(
        LocalStackOptions(
            state=state, config=config, port=port, ses_rate=ses_rate, templates_dir=templates_dir or found.templates
        )
    )
    try:
        stack.start()
    except OSError as exc:
        fail(f"could not start the local stack: {exc}")
    return stack


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
    stack = _start_stack(state, found, port=port, ses_rate=ses_rate, templates_dir=templates_dir)
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
    table.add_row("outbox", f"{state['outbox']}/index.html")
    if state.get("unsubscribe_url"):
        table.add_row("unsubscribe", state["unsubscribe_url"])
    if state.get("lambda_endpoint_url"):
        table.add_row("lanes", f"{state['lambda_endpoint_url']} (`mailwright lanes status|pause|resume`)")
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
        if now == last or not any(now):
            continue
        last = now
        sent = sum(stack.mailbox.sent.values()) if stack.mailbox else 0
        parts = [
            f"{name}: {s.deleted} done" + (f", {s.failed_records} retried" if s.failed_records else "")
            for name, s in stats.items()
        ]
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
    json_output: JsonOption = False,
) -> None:
    """Publish COUNT requests of every kind through the producer SDK, drain, and account for each one.

    Uses the running local stack if there is one, else starts one in-process
    for the run. Exits 1 if any published request is unaccounted for.
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
        stack = _start_stack(state, found, port=port, ses_rate=ses_rate, templates_dir=templates_dir)
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
        )
    )


def _published_events(stack: LocalStack | None) -> dict[str, int]:
    """SES events the local mailbox published, by type (unknown for a stack in another process)."""
    if stack is None or stack.mailbox is None or stack.mailbox.events is None:
        return {}
    return dict(stack.mailbox.events.published)


def _print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

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

"""`mailwright send`, `status`, `suppression ...`, `dlq ...` and `feedback replay`."""

from __future__ import annotations

import getpass
import json
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, app, dlq_app, feedback_app, suppression_app
from mailwright_tools.cli.output import EXIT_FAILED, EXIT_USAGE, console, emit_json, fail, optional_project, resolve

if TYPE_CHECKING:
    from mailwright_tools.target import Target


def _aws_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


# -- send -------------------------------------------------------------------


@app.command("send")
def send(
    ctx: typer.Context,
    to: Annotated[str | None, typer.Option("--to", help="Recipient address.")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Template id, e.g. order_confirmation.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Template data as a JSON object.")] = None,
    locale: Annotated[str | None, typer.Option("--locale", help="e.g. fr-CA.")] = None,
    priority: Annotated[str | None, typer.Option("--priority", help="critical, standard or bulk (the lane).")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key")] = None,
    user_id: Annotated[str | None, typer.Option("--user-id")] = None,
    metadata: Annotated[list[str] | None, typer.Option("--metadata", help="KEY=VALUE tag; repeatable.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSON file holding one request or an array of them.")
    ] = None,
    via: Annotated[str, typer.Option("--via", help="queue (the lane queue) or bus (EventBridge).")] = "queue",
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="A CSV file: one request per row, sent with --template. Columns recipient_email, user_id and locale "
            "are those fields; every other column is a template variable (a.b nests).",
        ),
    ] = None,
    column_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=FIELD for --csv: a request field, a template variable, or - to leave "
            "the column out; repeatable.",
        ),
    ] = None,
    batch_id: Annotated[
        str | None,
        typer.Option(
            "--batch-id",
            help="With --csv: names the batch in every row's idempotency key (default: TEMPLATE-FILENAME).",
        ),
    ] = None,
    no_template_check: Annotated[
        bool,
        typer.Option(
            "--no-template-check",
            help="Publish even if templates/ has no such template or it needs other data "
            "(e.g. a template only the deployed bucket holds).",
        ),
    ] = False,
    send_at: Annotated[
        str | None,
        typer.Option(
            "--send-at",
            help="Send at this time (ISO 8601 with an offset, e.g. 2026-12-24T09:00:00+01:00; at most a year "
            "ahead). Applies to every request published.",
        ),
    ] = None,
    cancel_key: Annotated[
        str | None,
        typer.Option("--cancel-key", help="A key `mailwright cancel --key` cancels the request(s) by."),
    ] = None,
    digest_key: Annotated[
        str | None,
        typer.Option(
            "--digest-key",
            help="Fold into a digest: requests for the same user and key within the digest template's window "
            "become one email (e.g. --template activity_digest --digest-key comments).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Publish one request built from flags, or the request(s) in --file, through the producer SDK.

    Every request is checked first, against the request schema and, when
    templates/ is readable, its template id and required variables; if any
    fails, each problem is listed, nothing is published, and the exit code is 2.
    """
    from mailwright.sdk import InvalidRequestError, PartialBatchError, Publisher, template_priorities
    from mailwright_tools.request_checks import KnownTemplates, check_requests

    if via not in ("queue", "bus"):
        fail("--via is queue or bus", EXIT_USAGE)
    if csv_file is not None:
        others = (to, data, locale, idempotency_key, user_id, file, digest_key)
        _send_csv(ctx, csv_file, template, column_map, batch_id, priority, metadata, via, no_template_check,
                  json_output, others=others)  # fmt: skip
        return
    if column_map or batch_id is not None:
        fail("--map and --batch-id go with --csv", EXIT_USAGE)
    requests = _requests_from(
        to, template, data, locale, priority, idempotency_key, user_id, metadata, file, digest_key=digest_key
    )
    # Scheduled sends (mailwright.scheduling): the request contract checks both like any other field.
    timing = {"send_at": send_at, "cancel_key": cancel_key}
    requests = [{**request, **{k: v for k, v in timing.items() if v is not None}} for request in requests]
    # Bad input is exit 2 whether or not a stack runs: check everything before looking for one.
    found = optional_project(ctx)
    templates = None if no_template_check or found is None else KnownTemplates.read(found.templates)
    problems = check_requests(requests, templates=templates)
    if problems:
        fail(_invalid_requests(problems, file), EXIT_USAGE)
    target = resolve(ctx)
    session = target.session()
    priorities = template_priorities(found.templates) if found is not None else {}
    if via == "bus":
        if not target.event_bus:
            fail(f"the {target.describe()} has no event bus")
        publisher = Publisher(event_bus=target.event_bus, template_priorities=priorities, session=session)
    else:
        publisher = Publisher(queue_urls=target.queues, template_priorities=priorities, session=session)
    try:
        request_ids = publisher.send_batch(requests)
    except InvalidRequestError as exc:
        fail(str(exc), EXIT_USAGE)
    except PartialBatchError as exc:
        fail(str(exc))
    except _aws_errors() as exc:
        fail(f"publishing failed: {exc}")
    from mailwright.request import EmailRequest

    sent = []
    for request, request_id in zip(requests, request_ids, strict=True):
        model = EmailRequest.model_validate(request)
        sent.append(
            {
                "request_id": request_id,
                "lane": publisher.lane_of(model),
                "template_id": model.template_id,
                "recipient": model.recipient_email,
            }
        )
    if json_output:
        emit_json({"published": len(sent), "via": via, "target": target.describe(), "requests": sent})
    else:
        out = console()
        for item in sent:
            out.print(
                f"published [bold]{item['request_id']}[/] ({item['template_id']} to {item['recipient']}, "
                f"{item['lane']} lane, via {via})"
            )
        out.print(f"[dim]follow it with: mailwright status {sent[0]['request_id']} --wait[/]")


def _send_csv(
    ctx: typer.Context,
    path: Path,
    template: str | None,
    column_map: list[str] | None,
    batch_id: str | None,
    priority: str | None,
    metadata: list[str] | None,
    via: str,
    no_template_check: bool,
    json_output: bool,
    *,
    others: tuple[Any, ...],
) -> None:
    """`send --csv`: --priority and --metadata apply to every row; the one-request flags do not go with it."""
    from mailwright_tools.cli.bulk import send_csv

    if any(value is not None for value in others):
        fail("--csv takes --template, --map, --batch-id, --priority and --metadata; the columns give the rest",
             EXIT_USAGE)  # fmt: skip
    extra: dict[str, Any] = {"priority": priority} if priority is not None else {}
    if metadata:
        extra["metadata"] = _metadata_pairs(metadata)
    send_csv(
        ctx,
        path=path,
        template=template,
        mapping=column_map or [],
        batch_id=batch_id,
        extra=extra,
        via=via,
        check_templates=not no_template_check,
        json_output=json_output,
    )


def _metadata_pairs(metadata: list[str]) -> dict[str, str]:
    pairs = {}
    for pair in metadata:
        key, sep, value = pair.partition("=")
        if not sep:
            fail(f"--metadata {pair!r}: expected KEY=VALUE", EXIT_USAGE)
        pairs[key] = value
    return pairs


def _invalid_requests(problems: list[tuple[int, str]], file: Path | None) -> str:
    """One line naming every problem; with flags (one request) without its index."""
    if file is None:
        return f"{'; '.join(reason for _, reason in problems)}; nothing was published"
    listed = "; ".join(f"request {index}: {reason}" for index, reason in problems)
    return f"--file {file}: {len(problems)} invalid request(s), nothing was published: {listed}"


def _requests_from(
    to: str | None,
    template: str | None,
    data: str | None,
    locale: str | None,
    priority: str | None,
    idempotency_key: str | None,
    user_id: str | None,
    metadata: list[str] | None,
    file: Path | None,
    *,
    digest_key: str | None = None,
) -> list[dict[str, Any]]:
    flags = any(v is not None for v in (to, template, data, locale, priority, idempotency_key, user_id, digest_key))
    flags = flags or bool(metadata)
    if file is not None:
        if flags:
            fail("give either --file or the request flags, not both", EXIT_USAGE)
        try:
            loaded = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"--file {file}: {exc}", EXIT_USAGE)
        items = loaded if isinstance(loaded, list) else [loaded]
        if not items or not all(isinstance(item, dict) for item in items):
            fail(f"--file {file}: expected a JSON object or a non-empty array of objects", EXIT_USAGE)
        return items
    if not to or not template:
        fail("--to and --template are required (or give --file)", EXIT_USAGE)
    request: dict[str, Any] = {"recipient_email": to, "template_id": template}
    if data is not None:
        try:
            request["template_data"] = json.loads(data)
        except ValueError as exc:
            fail(f"--data is not JSON: {exc}", EXIT_USAGE)
    optional = {
        "locale": locale,
        "priority": priority,
        "idempotency_key": idempotency_key,
        "user_id": user_id,
        "digest_key": digest_key,
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    if metadata:
        pairs = {}
        for pair in metadata:
            key, sep, value = pair.partition("=")
            if not sep:
                fail(f"--metadata {pair!r}: expected KEY=VALUE", EXIT_USAGE)
            pairs[key] = value
        request["metadata"] = pairs
    return [request]


# -- status -----------------------------------------------------------------

# A request id is 32 hex characters; at least this many of them are taken as a prefix of one.
MIN_PREFIX = 8
REQUEST_ID_LENGTH = 32
_HEX = re.compile(r"^[0-9a-f]+$")
WAIT_POLL_SECONDS = 0.5
MAX_RECIPIENT_RESULTS = 1000


@app.command("status")
def status(
    ctx: typer.Context,
    request_id: Annotated[
        str | None,
        typer.Argument(
            help="A request id (from send or the SDK), its first 8+ characters (local stack), or an SES message id."
        ),
    ] = None,
    recipient: Annotated[
        str | None,
        typer.Option("--recipient", help="Instead of one request: the requests sent to this address, newest first."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="With --recipient: completed at or after this ISO time, e.g. 2026-11-01T00:00Z."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_RECIPIENT_RESULTS, help="With --recipient: at most this many.")
    ] = 20,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Poll until the request reaches a terminal state; exit 1 if --timeout passes."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds --wait waits at most.")] = 60.0,
    json_output: JsonOption = False,
) -> None:
    """A request's whole history: its message-log entry, its SES events, and why it was not sent.

    Exits 0 when the request is in the message log, 1 when it is not (it may
    not be processed yet, wait in a dead-letter queue, or never have been
    published: the answer says which is likely). With --wait it polls until
    the request reaches a terminal state, whichever, and exits 1 if --timeout
    seconds pass first. With --recipient ADDRESS (instead of an id) it lists
    the requests sent to that address, newest first, as the status API's
    search does (the same code), and exits 1 when there are none.
    """
    from mailwright.constants import TERMINAL_STATUSES

    if recipient is not None:
        if request_id is not None or wait:
            fail("give a request id or --recipient ADDRESS, not both (--wait follows one request)", EXIT_USAGE)
        _status_by_recipient(ctx, recipient, since, limit, json_output)
        return
    if request_id is None:
        fail("give a request id, or --recipient ADDRESS", EXIT_USAGE)
    if since is not None:
        fail("--since goes with --recipient", EXIT_USAGE)
    target = resolve(ctx)
    session = target.session()
    dynamodb = session.client("dynamodb")
    wanted = request_id.strip()
    deadline = time.monotonic() + timeout
    try:
        while True:
            item = _find_request(target, dynamodb, wanted)
            if item is not None and item.get("status") in TERMINAL_STATUSES:
                break
            if not wait or time.monotonic() >= deadline:
                break
            time.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    except _aws_errors() as exc:
        fail(f"could not read the message log: {exc}")
    if item is None:
        _not_found(target, session, wanted, waited=timeout if wait else None, json_output=json_output)
        raise typer.Exit(EXIT_FAILED)
    result = {
        "request_id": item.get("pk", wanted),
        "found": True,
        "status": item.get("status"),
        "why": _why_not_sent(item),
        **{k: v for k, v in item.items() if k not in ("pk", "sk", "status", "history", "events")},
        "history": item.get("history", []),
        "events": item.get("events", []),
    }
    _print_status(_with_iso_times(result), json_output)
    if item.get("status") not in TERMINAL_STATUSES and (wait or item.get("status") != "scheduled"):
        raise typer.Exit(EXIT_FAILED)  # --wait ran out of time (or the request is not finished: failed)


def _status_by_recipient(ctx: typer.Context, recipient: str, since: str | None, limit: int, json_output: bool) -> None:
    """List the requests sent to `recipient` with the status API's search (StatusService), page after page."""
    from pydantic import ValidationError

    from mailwright.addresses import mask_address
    from mailwright.errors import TransientError
    from mailwright.request import describe_validation_error
    from mailwright.settings import ApiSettings
    from mailwright.status_models import MAX_PAGE_SIZE, MessageSummary, SearchRequest
    from mailwright.wiring import build_status_service

    try:
        query = SearchRequest.model_validate({"recipient": recipient, "since": since, "limit": 1})
    except ValidationError as exc:
        fail(f"--recipient/--since: {describe_validation_error(exc)}", EXIT_USAGE)
    target = resolve(ctx)
    if not target.address_key_secret:
        fail(f"the {target.describe()} names no address keyring: it predates lookups by address")
    settings = ApiSettings(
        messages_table=target.tables["messages"],
        address_key_secret_arn=target.address_key_secret,
        suppression_table=target.tables["suppression"],
    )
    service = build_status_service(settings, session=target.session())
    found: list[MessageSummary] = []
    cursor: str | None = None
    failures: tuple[type[BaseException], ...] = (TransientError, *_aws_errors())
    try:
        while len(found) < limit:
            page_size = min(MAX_PAGE_SIZE, limit - len(found))
            page = service.search(query.model_copy(update={"limit": page_size, "next": cursor}))
            found += page.items
            cursor = page.next
            if cursor is None:
                break
    except failures as exc:
        fail(f"could not read the message log: {exc}")
    masked = mask_address(query.recipient)
    if json_output:
        emit_json(
            {
                "recipient_masked": masked,
                "since": query.since.isoformat() if query.since else None,
                "found": len(found),
                "more": cursor is not None,
                "requests": [item.model_dump(mode="json") for item in found],
            }
        )
    else:
        _print_recipient_requests(masked, found, more=cursor is not None)
    if not found:
        raise typer.Exit(EXIT_FAILED)


def _print_recipient_requests(masked: str, found: list[Any], *, more: bool) -> None:
    from rich.markup import escape

    out = console()
    if not found:
        out.print(f"[yellow]no request to {escape(masked)} in the message log[/] (or none in that time)")
        return
    out.print(f"[bold]{len(found)}[/] request(s) to {escape(masked)}, newest first (UTC):")
    for item in found:
        state = item.status if not item.delivery or item.delivery == item.status else f"{item.status}/{item.delivery}"
        colour = "green" if item.status == "sent" else "yellow"
        why = f" · {item.reason_code}" if item.reason_code else ""
        out.print(
            f"  {_iso(item.completed_at.timestamp())}  {item.request_id}  [{colour}]{state:<20}[/] "
            f"{escape(str(item.template_id or '-'))} · {item.lane or '-'}{escape(why)}"
        )
    if more:
        out.print("[dim]more are older: raise --limit[/]")


def _find_request(target: Target, dynamodb: Any, wanted: str) -> dict[str, Any] | None:
    """The message-log item of a request id, a unique prefix of one, or an SES message id; None if none."""
    from mailwright.adapters.dynamodb import DynamoMessageLog
    from mailwright.constants import SES_MESSAGE_ID_INDEX, Keys

    log = DynamoMessageLog(dynamodb, target.tables["messages"], ttl_days=1)
    request_id = _full_request_id(target, dynamodb, wanted)
    if request_id is None:
        return None
    item = log.get(request_id)
    if item is None:  # perhaps an SES message id
        found = dynamodb.query(
            TableName=target.tables["messages"],
            IndexName=SES_MESSAGE_ID_INDEX,
            KeyConditionExpression="#m = :id",
            ExpressionAttributeNames={"#m": Keys.SES_MESSAGE_ID},
            ExpressionAttributeValues={":id": {"S": wanted}},
        ).get("Items", [])
        if found:
            item = log.get(found[0][Keys.MESSAGES_PK]["S"])
    return item


def _is_prefix(value: str) -> bool:
    return MIN_PREFIX <= len(value) < REQUEST_ID_LENGTH and bool(_HEX.match(value))


def _full_request_id(target: Target, dynamodb: Any, wanted: str) -> str | None:
    """`wanted`, or the one request id it is a prefix of (None when none has it yet); exits 2 when ambiguous."""
    from mailwright.constants import MESSAGE_LOG_REQUEST_SK, Keys

    if not _is_prefix(wanted):
        return wanted
    if not target.local:
        # A prefix needs a scan of the whole table: cheap on the local stack, not on a deployed one.
        fail(
            f"{wanted!r} is a prefix: on a deployed stack give the whole {REQUEST_ID_LENGTH}-character request id "
            "(`send` prints it; the email's X-Mailwright-Request-Id header holds it)",
            EXIT_USAGE,
        )
    matches: list[str] = []
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=target.tables["messages"],
        FilterExpression="begins_with(#pk, :prefix) AND #sk = :request",
        ProjectionExpression="#pk",
        ExpressionAttributeNames={"#pk": Keys.MESSAGES_PK, "#sk": Keys.MESSAGES_SK},
        ExpressionAttributeValues={":prefix": {"S": wanted}, ":request": {"S": MESSAGE_LOG_REQUEST_SK}},
    ):
        matches += [item[Keys.MESSAGES_PK]["S"] for item in page.get("Items", [])]
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5])
        fail(f"{wanted!r} is the start of {len(matches)} request ids ({shown}): give more of it", EXIT_USAGE)
    return matches[0] if matches else None


def _not_found(target: Target, session: Any, wanted: str, *, waited: float | None, json_output: bool) -> None:
    """Say where a request that is not in the message log is, or what is likely."""
    from mailwright_tools.queues import body_request_id, peek_queue, queue_depth

    sqs = session.client("sqs")
    try:
        for name, url in target.dead_letter_queues().items():
            for message in peek_queue(sqs, url, limit=2000):
                found = body_request_id(message["Body"])
                if found == wanted or (_is_prefix(wanted) and found.startswith(wanted)):
                    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
                    lane = name.removesuffix("-parked")  # a lane's parked queue is redriven with its DLQ
                    why = (
                        f"it waits in the {name} dead-letter queue after {receives} receives; "
                        f"`mailwright dlq redrive --lane {lane}` sends it back"
                    )
                    _print_status({"request_id": found, "found": False, "dlq": name, "why": why}, json_output)
                    return
        pending = {lane: queue_depth(sqs, url) for lane, url in target.queues.items()}
    except _aws_errors() as exc:
        fail(f"could not read the queues: {exc}")
    waiting = sum(pending.values())
    looks_like_id = _is_prefix(wanted) or (len(wanted) == REQUEST_ID_LENGTH and bool(_HEX.match(wanted)))
    waited_for = f"after waiting {waited:g} s" if waited is not None else ""
    if looks_like_id and waiting:
        lanes = ", ".join(f"{lane} {count}" for lane, count in pending.items() if count)
        why = (
            f"not in the message log {waited_for or 'yet'}: most likely not processed yet, the lanes hold "
            f"{waiting} message(s) ({lanes})"
            + ("; is a lane paused? `mailwright lanes status`" if waited is not None else "; try --wait")
        )
    else:
        why = (
            f"not in the message log or any dead-letter queue {waited_for}".rstrip() + ": "
            "not processed yet, never published, or expired" + ("" if waited is not None else " (--wait waits for it)")
        )
    _print_status({"request_id": wanted, "found": False, "pending_in_lanes": pending, "why": why}, json_output)


def _why_not_sent(item: dict[str, Any]) -> str | None:
    """The recorded reason, with its code when the code adds something (`suppressed` says nothing new)."""
    status = item.get("status")
    if status == "sent":
        return None
    if status == "scheduled" and isinstance(item.get("send_at"), (int, float)):
        from mailwright_tools.cli.schedules import describe_wait

        send_at = float(item["send_at"])
        return f"scheduled for {_iso(send_at)} ({describe_wait(send_at - time.time())})"
    reason, code = item.get("reason"), item.get("reason_code")
    if not reason:
        return str(code or status)
    return str(reason) if not code or code == status or code in reason else f"{reason} ({code})"


def _iso(epoch: Any) -> str:
    """An epoch time as ISO 8601 in UTC with milliseconds (2024-05-01T10:00:00.123Z); `-` when not a time."""
    try:
        return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def _is_time_key(key: str) -> bool:
    return key == "at" or key.endswith("_at")


def _with_iso_times(value: Any) -> Any:
    """A copy with an ISO twin (`at_iso`, `completed_at_iso`...) beside every epoch time, at any depth."""
    if isinstance(value, list):
        return [_with_iso_times(item) for item in value]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for key, item in value.items():
        result[key] = _with_iso_times(item)
        if _is_time_key(str(key)) and isinstance(item, (int, float)) and not isinstance(item, bool):
            result[f"{key}_iso"] = _iso(item)
    return result


# Shown in this order above the history; any other field is in --json.
STATUS_FIELDS = (
    "lane",
    "template_id",
    "template_version",
    "category",
    "locale",
    "recipient_masked",
    "user_id",
    "metadata",
    "ses_message_id",
    "attempts",
    "evaluation",
    "delivery",
    "received_at",
    "completed_at",
    "send_at",
    "cancel_key",
    # Issue 17: the digest email a `digested` request went in; when a `deferred` one may go.
    "digest_id",
    "resume_at",
)
# What a history line says in its own columns, or not at all.
_LINE_KEYS = frozenset({"at", "status", "event", "type", "rank", "recipients", "detail"})


def _timeline(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The worker's history entries and the SES events (from the history and beside it), by time."""
    entries = [entry for entry in result.get("history", []) if isinstance(entry, dict) and "event" not in entry]
    entries += [event for event in result.get("events", []) if isinstance(event, dict)]
    return sorted(entries, key=lambda entry: float(entry.get("at") or 0))


def _timeline_line(entry: dict[str, Any]) -> str:
    """One history entry as `time  status  type · to ... · key: value ...`, whatever fields it holds."""
    parts = []
    kind = entry.get("type") or entry.get("event")
    if kind:
        parts.append(str(kind))
    if entry.get("recipients"):
        parts.append("to " + ", ".join(map(str, entry["recipients"])))
    detail = entry.get("detail")
    details: dict[str, Any] = detail if isinstance(detail, dict) else {}
    extra = {k: v for k, v in entry.items() if k not in _LINE_KEYS and not k.endswith("_iso")}
    for key, value in {**details, **extra}.items():
        if value in (None, "", [], {}):
            continue
        shown = _iso(value) if _is_time_key(str(key)) and isinstance(value, (int, float)) else value
        parts.append(f"{key}: {shown}")
    return f"{_iso(entry.get('at'))}  {entry.get('status', '?')!s:<12} {' · '.join(map(str, parts))}".rstrip()


def _print_status(result: dict[str, Any], json_output: bool) -> None:
    if json_output:
        emit_json(result)
        return
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if not result["found"]:
        out.print(f"[bold]{result['request_id']}[/]: [yellow]{escape(result['why'])}[/]")
        return
    colour = "green" if result["status"] == "sent" else "yellow"
    out.print(f"[bold]{result['request_id']}[/]: [{colour}]{result['status']}[/]")
    if result.get("why"):
        out.print(f"  why: {escape(str(result['why']))}")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim")
    table.add_column()
    for key in STATUS_FIELDS:
        if key not in result:
            continue
        value = result[key]
        if _is_time_key(key):
            shown = _iso(value)
        elif isinstance(value, dict):
            shown = ", ".join(f"{k}={v}" for k, v in value.items())
        else:
            shown = str(value)
        table.add_row(key, escape(shown))
    out.print(table)
    timeline = _timeline(result)
    if timeline:
        out.print("history (UTC):")
        for entry in timeline:
            out.print(f"  {escape(_timeline_line(entry))}")


# -- suppression ------------------------------------------------------------


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):
        return "cli"


def _suppression_service(ctx: typer.Context, mirror_ses: bool) -> tuple[Any, Target]:
    from mailwright.wiring import build_suppression_service

    target = resolve(ctx)
    if mirror_ses and target.local:
        fail("--mirror-ses needs a deployed stack: the local stack has no SES suppression list", EXIT_USAGE)
    if not target.address_key_secret:
        fail(f"{target.describe()} has no address keyring (output AddressKeySecretArn): deploy this version first")
    service = build_suppression_service(
        suppression_table=target.tables["suppression"],
        address_key_secret=target.address_key_secret,
        session=target.session(),
        mirror_to_ses=mirror_ses,
    )
    return service, target


def _entry_json(entry: Any) -> dict[str, Any]:
    return {
        "address": entry.masked,
        "address_hash": entry.address_hash,
        "reason": entry.reason,
        "reasons": sorted(entry.reasons) if getattr(entry, "reasons", None) else [entry.reason],
        "scope": entry.scope,
        "created_at": entry.created_at,
        "expires_at": entry.expires_at,
        "source": entry.source,
        "note": getattr(entry, "note", ""),
    }


MirrorOption = Annotated[
    bool, typer.Option("--mirror-ses/--no-mirror-ses", help="Also change the SES account suppression list.")
]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who makes the change (default: cli:user@host).")]
NoteOption = Annotated[str, typer.Option("--note", help="Why (kept in the audit trail).")]


def _suppression_errors() -> tuple[type[BaseException], ...]:
    from mailwright.errors import SuppressionError

    return (SuppressionError, ValueError)


@suppression_app.command("check")
def suppression_check(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The email address.")],
    json_output: JsonOption = False,
) -> None:
    """Whether ADDRESS is suppressed, and why."""
    service, _ = _suppression_service(ctx, False)
    try:
        entry = service.check(address)
        history = service.history(address)
    except _suppression_errors() as exc:
        fail(str(exc), EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not read the suppression list: {exc}")
    result: dict[str, Any] = {"suppressed": entry is not None, "reason": entry.reason if entry else None}
    if entry is not None:
        result.update(_entry_json(entry))
    result["history"] = [
        {"at": r.at, "action": r.action, "reason": r.reason, "actor": r.actor, "note": r.note, "outcome": r.outcome}
        for r in history
    ]
    if json_output:
        emit_json(result)
        return
    from rich.markup import escape

    out = console()
    if entry is None:
        out.print("[green]not suppressed[/]")
    else:
        expires = f", until {_iso(entry.expires_at)}" if entry.expires_at else ""
        out.print(
            f"[red]suppressed[/]: {entry.reason} ({entry.scope}{expires}) since {_iso(entry.created_at)}, "
            f"source {entry.source}"
        )
    for record in result["history"]:
        out.print(
            f"  [dim]{_iso(record['at'])}[/] {record['action']} {record['reason']} "
            f"by {escape(str(record['actor']))}: {escape(str(record['note']))}"
        )


@suppression_app.command("add")
def suppression_add(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The email address.")],
    reason: Annotated[str, typer.Option("--reason", help="MANUAL, BOUNCE, COMPLAINT or SOFT_BOUNCE.")] = "MANUAL",
    note: NoteOption = "",
    actor: ActorOption = None,
    mirror_ses: MirrorOption = False,
    json_output: JsonOption = False,
) -> None:
    """Suppress ADDRESS (audited)."""
    service, _ = _suppression_service(ctx, mirror_ses)
    try:
        entry = service.add(address, reason=reason.upper(), actor=_actor(actor), note=note)
    except _suppression_errors() as exc:
        fail(str(exc), EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not write the suppression list: {exc}")
    if json_output:
        emit_json({"suppressed": True, **_entry_json(entry)})
    else:
        console().print(f"suppressed {entry.masked}: {entry.reason} ({entry.scope})")


@suppression_app.command("remove")
def suppression_remove(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The email address.")],
    force: Annotated[bool, typer.Option("--force", help="Required to lift a COMPLAINT suppression.")] = False,
    note: NoteOption = "",
    actor: ActorOption = None,
    mirror_ses: MirrorOption = False,
    json_output: JsonOption = False,
) -> None:
    """Lift ADDRESS's suppression (audited); a complaint needs --force."""
    from mailwright.errors import ComplaintRemovalError, NotSuppressedError

    service, _ = _suppression_service(ctx, mirror_ses)
    try:
        entry = service.remove(address, actor=_actor(actor), note=note, force=force)
    except ComplaintRemovalError as exc:
        fail(f"{exc}: the recipient complained; pass --force (and a --note) if they asked for mail again")
    except NotSuppressedError as exc:
        fail(str(exc))
    except _suppression_errors() as exc:
        fail(str(exc), EXIT_USAGE)
    except _aws_errors() as exc:
        fail(f"could not write the suppression list: {exc}")
    if json_output:
        emit_json({"removed": True, "suppressed": False, **_entry_json(entry)})
    else:
        console().print(f"removed the {entry.reason} suppression of {entry.masked}")


@suppression_app.command("list")
def suppression_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """Active suppressions, newest first."""
    service, target = _suppression_service(ctx, False)
    try:
        entries = service.list(limit=limit)
    except _aws_errors() as exc:
        fail(f"could not read the suppression list: {exc}")
    if json_output:
        emit_json({"count": len(entries), "suppressions": [_entry_json(entry) for entry in entries]})
        return
    from rich.table import Table

    table = Table(title=f"Suppressions ({target.describe()})", title_justify="left")
    for column in ("address", "reason", "scope", "since", "expires", "source"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.masked,
            entry.reason,
            entry.scope,
            _iso(entry.created_at),
            _iso(entry.expires_at) if entry.expires_at else "never",
            entry.source,
        )
    console().print(table)


# -- dlq ----------------------------------------------------------------------


LaneOption = Annotated[
    str | None, typer.Option("--lane", help="critical, standard, bulk or feedback (default: all; list also: ingest).")
]


def _dlqs(target: Target, lane: str | None) -> dict[str, str]:
    from mailwright_tools.target import PARKED_SUFFIX

    queues = target.dead_letter_queues()
    if lane is None:
        return queues
    # A lane's dead letters move from its DLQ to its parked queue once recorded as failed: --lane takes both.
    chosen = {name: url for name, url in queues.items() if name in (lane, lane + PARKED_SUFFIX)}
    if not chosen:
        known = [name for name in queues if not name.endswith(PARKED_SUFFIX)]
        fail(f"no dead-letter queue {lane!r}; known: {', '.join(known)}", EXIT_USAGE)
    return chosen


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    lane: LaneOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Messages shown per queue.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """What waits in the dead-letter queues (messages stay where they are)."""
    from mailwright_tools.dlq import list_messages
    from mailwright_tools.queues import queue_depth

    target = resolve(ctx)
    sqs = target.session().client("sqs")
    result: dict[str, Any] = {}
    try:
        for name, url in _dlqs(target, lane).items():
            messages = list_messages(sqs, url, limit=limit)
            result[name] = {"url": url, "count": max(queue_depth(sqs, url), len(messages)), "messages": messages}
    except _aws_errors() as exc:
        fail(f"could not read the dead-letter queues: {exc}")
    total = sum(queue["count"] for queue in result.values())
    if json_output:
        emit_json(
            {
                "total": total,
                "queues": {
                    name: {**queue, "messages": [m.to_json() for m in queue["messages"]]}
                    for name, queue in result.items()
                },
            }
        )
        return
    from rich.table import Table

    out = console()
    for name, queue in result.items():
        out.print(f"[bold]{name}[/] DLQ: {queue['count']} message(s)")
        if queue["messages"]:
            table = Table(show_edge=False)
            for column in ("request", "template / event", "recipient", "receives", "first sent"):
                table.add_column(column)
            for m in queue["messages"]:
                table.add_row(m.request_id, m.template_id, m.recipient, str(m.receive_count), _iso(m.sent_at))
            out.print(table)
    out.print(f"{total} message(s) in dead-letter queues")


@dlq_app.command("redrive")
def dlq_redrive(ctx: typer.Context, lane: LaneOption = None, json_output: JsonOption = False) -> None:
    """Send dead-lettered messages back to their queues (bodies and attributes unchanged)."""
    from mailwright_tools.dlq import redrive

    target = resolve(ctx)
    sqs = target.session().client("sqs")
    results: dict[str, Any] = {}
    try:
        for name, url in _dlqs(target, lane).items():
            source = target.source_queue(name)
            if source is None:
                if lane is not None:
                    fail(
                        f"the {name} DLQ has no source queue to redrive to (EventBridge delivery failures)", EXIT_USAGE
                    )
                continue
            outcome = redrive(sqs, url, source, use_move_task=not target.local)
            results[name] = {
                "moved": outcome.moved,
                "failed": outcome.failed,
                "method": outcome.method,
                "task_handle": outcome.task_handle,
                "errors": outcome.errors,
            }
    except _aws_errors() as exc:
        fail(f"redrive failed: {exc}")
    moved = sum(r["moved"] for r in results.values())
    failed = sum(r["failed"] for r in results.values())
    if json_output:
        emit_json({"moved": moved, "failed": failed, "queues": results})
    else:
        out = console()
        for name, r in results.items():
            out.print(
                f"{name}: moved {r['moved']} back to its queue ({r['method']})"
                + (f", {r['failed']} failed" if r["failed"] else "")
            )
    if failed:
        raise typer.Exit(EXIT_FAILED)


# -- feedback -----------------------------------------------------------------


@feedback_app.command("replay")
def feedback_replay(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON: one SES event or an array; raw or in SNS envelopes.")],
    json_output: JsonOption = False,
) -> None:
    """Feed SES events through the feedback function's service (suppressions, message log)."""
    try:
        loaded = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"{file}: {exc}", EXIT_USAGE)
    events = loaded if isinstance(loaded, list) else [loaded]
    from mailwright.settings import FeedbackSettings
    from mailwright.wiring import build_feedback_service

    target = resolve(ctx)
    service = build_feedback_service(FeedbackSettings.from_env(target.feedback_environment()), session=target.session())
    try:
        report = service.process_events(events)
    except _aws_errors() as exc:
        fail(f"replay failed: {exc}")
    result = {
        "events": len(events),
        "processed": report.processed,
        "suppressed": report.suppressed,
        "ignored": report.ignored,
        "errors": report.errors,
        "failed": list(report.failed),
        "by_type": dict(report.by_type),
        "soft_bounces": report.soft_bounces,
        "unmatched": report.unmatched,
    }
    if json_output:
        emit_json(result)
    else:
        console().print(
            f"{result['events']} event(s): {report.processed} processed, {report.suppressed} suppression(s), "
            f"{report.ignored} ignored, {report.errors} error(s)"
            + (f"; failed: {', '.join(report.failed)}" if report.failed else "")
        )
    if report.errors or report.failed:
        raise typer.Exit(EXIT_FAILED)

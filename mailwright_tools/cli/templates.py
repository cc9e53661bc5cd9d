"""`mailwright templates validate|preview|upload`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mailwright_tools.cli.app import JsonOption, cli_context, templates_app
from mailwright_tools.cli.output import (
    EXIT_FAILED,
    EXIT_USAGE,
    console,
    emit_json,
    fail,
    optional_project,
    project,
    resolve,
)

if TYPE_CHECKING:
    from mailwright_tools.project import Project

CHROMIUM_ENV = "MAILWRIGHT_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"

TemplatesDirOption = Annotated[
    Path | None, typer.Option("--templates-dir", help="The templates directory (default: the project's templates/).")
]


def _templates(ctx: typer.Context, templates_dir: Path | None) -> tuple[Path, Project | None]:
    """The templates to work on (--templates-dir, else the project's) and the project, when there is one."""
    if templates_dir is not None:
        return templates_dir, optional_project(ctx)
    found = project(ctx)
    return found.templates, found


def _settings(found: Project | None) -> tuple[str, str]:
    """Postal address and unsubscribe base URL from the project's cdk.json, for rendering like the workers."""
    context = found.context() if found is not None else {}
    postal = str(context.get("postal_address") or "Example Co., 1 Example Street, Springfield, USA")
    base_url = str(context.get("unsubscribe_base_url") or "https://example.com/unsubscribe")
    return postal, base_url


@templates_app.command("validate")
def validate(ctx: typer.Context, templates_dir: TemplatesDirOption = None, json_output: JsonOption = False) -> None:
    """Render every template with its sample data in every locale and run the stricter checks.

    Exits 1 when any template has a problem: a syntax error, a missing or
    undeclared variable, an unknown filter or helper, a sandbox violation,
    product or marketing mail without the unsubscribe link and postal address,
    a subject over 78 characters, a link that is not https, an image without
    alt text. A declared variable no locale uses is only a warning.
    """
    from rich.markup import escape

    from mailwright_tools.template_checks import check_tree

    templates_dir, found = _templates(ctx, templates_dir)
    if not templates_dir.is_dir():
        fail(f"{templates_dir} is not a directory", EXIT_USAGE)
    postal, base_url = _settings(found)
    checks = check_tree(templates_dir, postal_address=postal, base_url=base_url)
    ok = all(check.ok for check in checks)
    if json_output:
        emit_json({"ok": ok, "checked": len(checks), "templates": [check.to_json() for check in checks]})
    else:
        out = console()
        for check in checks:
            mark = "[green]ok[/]  " if check.ok else "[red]FAIL[/]"
            where = check.locale if check.variant is None else f"{check.locale}, variant {check.variant}"
            out.print(f"{mark} {check.template} [dim]({where})[/]")
            for problem in check.problems:
                out.print(f"     [red]{escape(str(problem))}[/]")
            for warning in check.warnings:
                out.print(f"     [yellow]warning: {escape(str(warning))}[/]")
        failed = sum(1 for check in checks if not check.ok)
        warned = sum(len(check.warnings) for check in checks)
        summary = f"{len(checks)} template locales checked, {failed} with problems, {warned} warnings"
        out.print(f"[bold {'green' if ok else 'red'}]{summary}[/]")
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def chromium_path() -> str | None:
    """The Chromium binary: $MAILWRIGHT_CHROMIUM, /usr/bin/chromium, or one on the PATH."""
    for candidate in (os.environ.get(CHROMIUM_ENV), DEFAULT_CHROMIUM):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html_file: Path, png_file: Path, *, timeout: float = 60) -> None:
    """A PNG of an HTML file from headless Chromium; RuntimeError saying why when it cannot be made."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError(
            f"--png needs Chromium, which was not found at {DEFAULT_CHROMIUM} or on the PATH (set {CHROMIUM_ENV})"
        )
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--hide-scrollbars",
        f"--screenshot={png_file}",
        "--window-size=800,1200",
        html_file.resolve().as_uri(),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"Chromium failed: {exc}") from None
    if result.returncode != 0 or not png_file.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"Chromium exited with {result.returncode}: {last}")


@templates_app.command("preview")
def preview(
    ctx: typer.Context,
    template: Annotated[str, typer.Argument(help="Template id, e.g. newsletter.")],
    locale: Annotated[str | None, typer.Option("--locale", help="Locale (falls back like the worker).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="JSON file with the template data.")] = None,
    to: Annotated[str, typer.Option("--to", help="Recipient shown in the email.")] = "jane.doe@example.com",
    png: Annotated[bool, typer.Option("--png", help="Also take a screenshot with headless Chromium.")] = False,
    templates_dir: TemplatesDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Render TEMPLATE to .mailwright/preview/ (HTML, text, subject; PNG with --png)."""
    from mailwright.errors import TemplateFormatError
    from mailwright.templates import Renderer, load_template_dir
    from mailwright_tools.template_checks import provided_variables, render_parts

    templates_dir, found = _templates(ctx, templates_dir)
    path = templates_dir / template
    if not (path / "template.json").is_file():
        fail(f"no template {template!r} in {templates_dir}", EXIT_USAGE)
    try:
        bundle = load_template_dir(path)
    except TemplateFormatError as exc:
        fail(str(exc))
    values: dict[str, Any] = dict(bundle.metadata.sample_data)
    if data is not None:
        try:
            loaded = json.loads(data.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            fail(f"--data {data}: {exc}", EXIT_USAGE)
        if not isinstance(loaded, dict):
            fail(f"--data {data}: must hold a JSON object", EXIT_USAGE)
        values = loaded
    resolved = bundle.resolve_locale(locale)
    postal, base_url = _settings(found)
    provided = provided_variables(bundle, recipient=to, postal_address=postal, base_url=base_url)
    rendered, problems = render_parts(Renderer(), bundle, resolved, values, provided)
    if problems:
        fail("; ".join(str(problem) for problem in problems))
    out_dir = cli_context(ctx).state.preview
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{template}.{resolved}"
    files = {
        "html": out_dir / f"{stem}.html",
        "text": out_dir / f"{stem}.txt",
        "subject": out_dir / f"{stem}.subject.txt",
    }
    files["html"].write_text(rendered["html"], encoding="utf-8")
    files["text"].write_text(rendered["text"], encoding="utf-8")
    files["subject"].write_text(rendered["subject"].strip() + "\n", encoding="utf-8")
    if png:
        files["png"] = out_dir / f"{stem}.png"
        try:
            screenshot(files["html"], files["png"])
        except RuntimeError as exc:
            fail(str(exc))
    result = {
        "template": template,
        "locale": resolved,
        "subject": rendered["subject"].strip(),
        "files": {kind: str(file) for kind, file in files.items()},
    }
    if json_output:
        emit_json(result)
    else:
        out = console()
        out.print(f"[bold]{result['subject']}[/] [dim]({template}, {resolved})[/]")
        for kind, file in files.items():
            out.print(f"  {kind:<8}{file}")


@templates_app.command("upload")
def upload(
    ctx: typer.Context,
    templates_dir: TemplatesDirOption = None,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="Replace this template's studio version the repository has not pulled."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check every template (as `templates validate`), bundle it and upload the changed ones to the target stack's
    templates bucket (new S3 versions); nothing is uploaded when a template fails the checks.

    A template whose latest version was published from the studio and not
    taken into templates/ (`mailwright templates pull`) is kept, not
    overwritten, unless named with --force.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.adapters.template_store import S3TemplateStore
    from mailwright.errors import TemplateFormatError
    from mailwright.templates import load_template_tree
    from mailwright.templates.publishing import SOURCE_UPLOAD, acknowledged_versions, sync_bundles
    from mailwright_tools.template_checks import check_tree

    templates_dir, found = _templates(ctx, templates_dir)
    postal, base_url = _settings(found)
    failed = [
        problem
        for check in check_tree(templates_dir, postal_address=postal, base_url=base_url)
        for problem in check.problems
    ]
    if failed:
        more = f" (and {len(failed) - 1} more: mailwright templates validate)" if len(failed) > 1 else ""
        fail(f"not uploaded, a template fails the checks: {failed[0]}{more}")
    target = resolve(ctx)
    if not target.templates_bucket:
        fail(f"the {target.describe()} names no templates bucket")
    store = S3TemplateStore(target.session().client("s3"), target.templates_bucket)
    try:
        bundles = {tid: bundle.to_json().encode("utf-8") for tid, bundle in load_template_tree(templates_dir).items()}
        result = sync_bundles(
            store, bundles, acknowledged=acknowledged_versions(templates_dir), source=SOURCE_UPLOAD, force=force or ()
        )
    except TemplateFormatError as exc:
        fail(f"not uploaded, a template is malformed: {exc}")
    except (ClientError, BotoCoreError) as exc:
        fail(f"upload to s3://{target.templates_bucket} failed: {exc}")
    if json_output:
        emit_json({"bucket": target.templates_bucket, "target": target.describe(), **result.to_json()})
        return
    out = console()
    for template_id, version in result.uploaded.items():
        out.print(f"uploaded {template_id} [dim](version {version})[/]")
    for template_id in result.unchanged:
        out.print(f"unchanged {template_id}")
    for template_id, kept in result.kept.items():
        out.print(
            f"[yellow]kept {template_id}[/]: version {kept.version_id} was published from the studio "
            f"({kept.publication.author or 'someone'}: {kept.publication.note or 'no note'}); "
            f"`mailwright templates pull {template_id}` takes it in, --force {template_id} replaces it"
        )
    out.print(
        f"{len(result.uploaded)} uploaded, {len(result.unchanged)} unchanged, {len(result.kept)} kept "
        f"in s3://{target.templates_bucket} ({target.describe()})"
    )


@templates_app.command("pull")
def pull(
    ctx: typer.Context,
    template_ids: Annotated[
        list[str] | None, typer.Argument(help="Templates to pull (default: every one published from the studio).")
    ] = None,
    templates_dir: TemplatesDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Bring the versions published from the studio into templates/ for review, each with a published.json.

    Writes the template's template.json and parts (layouts and partials stay
    the repository's) and `<template>/published.json` naming the version,
    its change note and who published it. Commit them; the next deploy then
    may replace that version with the repository's.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.adapters.template_store import S3TemplateStore
    from mailwright.constants import PUBLISHED_FILE
    from mailwright.templates import TemplateBundle, write_template_dir
    from mailwright.templates.publishing import REPOSITORY_SOURCES, published_record

    templates_dir, _ = _templates(ctx, templates_dir)
    if not templates_dir.is_dir():
        fail(f"{templates_dir} is not a directory", EXIT_USAGE)
    target = resolve(ctx)
    if not target.templates_bucket:
        fail(f"the {target.describe()} names no templates bucket")
    store = S3TemplateStore(target.session().client("s3"), target.templates_bucket)
    pulled: list[dict[str, Any]] = []
    try:
        wanted = list(template_ids or store.template_ids())
        for template_id in wanted:
            latest = store.latest(template_id)
            if latest is None:
                fail(f"{template_id} has no bundle in s3://{target.templates_bucket}", EXIT_USAGE)
            if not template_ids and latest.publication.source in REPOSITORY_SOURCES:
                continue  # from the repository already
            bundle = TemplateBundle.model_validate_json(store.read(template_id, latest.version_id))
            path = templates_dir / template_id
            write_template_dir(bundle, path)
            record = published_record(latest)
            (path / PUBLISHED_FILE).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", "utf-8")
            pulled.append({"template": template_id, "path": str(path), **record})
    except (ClientError, BotoCoreError) as exc:
        fail(f"could not read s3://{target.templates_bucket}: {exc}")
    if json_output:
        emit_json({"bucket": target.templates_bucket, "pulled": pulled})
        return
    out = console()
    for entry in pulled:
        out.print(
            f"pulled {entry['template']} [dim](version {entry['version']}, {entry['source']})[/]: "
            f"{entry['note'] or 'no note'} [dim]({entry['author'] or 'unknown'})[/]"
        )
    if not pulled:
        out.print("nothing published from the studio to pull")
    else:
        out.print("review with `git diff templates/`, then commit")


@templates_app.command("versions")
def versions(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 10,
    json_output: JsonOption = False,
) -> None:
    """A template's published versions, newest first: where each came from, its note and who published it."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.adapters.template_store import S3TemplateStore

    target = resolve(ctx)
    store = S3TemplateStore(target.session().client("s3"), target.templates_bucket)
    try:
        found = store.versions(template_id, limit=limit)
    except (ClientError, BotoCoreError) as exc:
        fail(f"could not read s3://{target.templates_bucket}: {exc}")
    if json_output:
        emit_json({"template": template_id, "versions": [v.to_json() for v in found]})
        return
    out = console()
    for version in found:
        mark = "[green]latest[/] " if version.latest else "       "
        note = f": {version.publication.note}" if version.publication.note else ""
        who = f" ({version.publication.author})" if version.publication.author else ""
        out.print(f"{mark}{version.version_id} {version.publication.source}{who}{note}")


@templates_app.command("import-ses")
def import_ses(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The SES stored template's name.")],
    template_id: Annotated[
        str | None, typer.Option("--template-id", help="Directory name under templates/ (default: from NAME).")
    ] = None,
    category: Annotated[
        str,
        typer.Option(
            "--category",
            help="security, transactional, product or marketing: decides consent and unsubscribe handling.",
        ),
    ] = "transactional",
    locale: Annotated[str, typer.Option("--locale", help="The locale directory the parts go into.")] = "en",
    region: Annotated[str | None, typer.Option("--region", help="The SES region (default: the AWS settings').")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a template directory of the same id.")] = False,
    templates_dir: TemplatesDirOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pull an SES stored template (sesv2 GetEmailTemplate) into templates/ as a Handlebars template.

    Writes templates/<id>/template.json ("engine": "handlebars", the category,
    the variables the parts read, placeholder sample data) and
    <locale>/subject.txt, body.html, body.txt, then runs `templates validate`'s
    checks on it and lists what is left to fix.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from rich.markup import escape

    from mailwright.constants import CATEGORIES
    from mailwright_tools import ses_import
    from mailwright_tools.template_checks import check_template

    if category not in CATEGORIES:
        fail(f"--category must be one of {', '.join(CATEGORIES)}, not {category!r}", EXIT_USAGE)
    templates_dir, found = _templates(ctx, templates_dir)
    if not templates_dir.is_dir():
        fail(f"{templates_dir} is not a directory", EXIT_USAGE)
    try:
        result = ses_import.import_ses_template(
            ses_import.sesv2_client(region),
            name,
            templates_dir=templates_dir,
            template_id=template_id,
            category=category,
            locale=locale,
            force=force,
        )
    except ses_import.TemplateImportError as exc:
        fail(str(exc), EXIT_USAGE if exc.usage else EXIT_FAILED)
    except (ClientError, BotoCoreError) as exc:
        fail(f"SES GetEmailTemplate failed: {exc}")
    postal, base_url = _settings(found)
    checks = check_template(result.path, postal_address=postal, base_url=base_url)
    to_fix = sorted({str(problem) for check in checks for problem in check.problems})
    if json_output:
        emit_json({**result.to_json(), "ok": not to_fix, "problems": to_fix})
        return
    out = console()
    out.print(f"imported SES template {escape(name)} into {escape(str(result.path))} [dim](handlebars, {category})[/]")
    for note in result.notes:
        out.print(f"  [yellow]{escape(note)}[/]")
    for problem in to_fix:
        out.print(f"  [red]to fix: {escape(problem)}[/]")
    if not to_fix:
        out.print("  [green]passes templates validate[/]")


@templates_app.command("report")
def report(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template whose A/B variants to compare.")],
    since: Annotated[
        str, typer.Option("--since", help="How far back: a duration (30m, 12h, 7d, 2w) or an ISO time.")
    ] = "7d",
    json_output: JsonOption = False,
) -> None:
    """Each A/B variant's sent, delivered, opened, clicked, bounced and complained, against the control.

    The control is the first variant template.json declares. Each rate (per
    email sent) is compared with the control's by a two-sided two-proportion
    z-test, or Fisher's exact test when an expected count is under 5;
    significant means p < 0.05. A deployed stack is read from its CloudWatch
    metrics, the local stack from its message log.
    """
    import time

    from botocore.exceptions import BotoCoreError, ClientError
    from rich.markup import escape
    from rich.table import Table

    from mailwright.adapters.variants import DynamoVariantLedger
    from mailwright.errors import TransientError
    from mailwright_tools import variant_report as vr

    now = time.time()
    try:
        start = vr.parse_since(since, now=now)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    target = resolve(ctx)
    session = target.session()
    try:
        state = DynamoVariantLedger(session.client("dynamodb"), target.tables["idempotency"]).read(template_id)
        if target.local:
            items = vr.scan_message_log(session.client("dynamodb"), target.tables["messages"], template_id, since=start)
            tallies, source = vr.tally_message_log(items), "message log"
        else:
            tallies = vr.tally_metrics(session.client("cloudwatch"), template_id, since=start, until=now)
            source = "CloudWatch metrics"
    except (ClientError, BotoCoreError, TransientError) as exc:
        fail(f"could not read the variants of {template_id}: {exc}")
    off = {name: f"{item.reason} ({item.actor}: {item.note})" for name, item in state.off.items()}
    result = vr.build_report(template_id, tallies, declared=state.names, since=start, until=now, source=source, off=off)
    if json_output:
        emit_json(result.to_json())
        return
    out = console()
    if not result.tallies:
        out.print(f"no A/B variants of {escape(template_id)} counted since {since} ({target.describe()})")
        return
    table = Table(title=f"{template_id}: variants since {since} ({source})")
    table.add_column("variant")
    for column in vr.COUNTS:
        table.add_column(column.replace("_", " "), justify="right")
    for tally in result.tallies:
        name = tally.variant + (" [dim](control)[/]" if tally is result.tallies[0] else "")
        if tally.variant in off:
            name += " [red](off)[/]"
        table.add_row(name, *(str(tally.counts[column]) for column in vr.COUNTS))
    out.print(table)
    for tally in result.tallies[1:]:
        for comparison in result.comparisons(tally):
            mark = "[green]significant[/]" if comparison.significant else "[dim]not significant[/]"
            out.print(
                f"{escape(tally.variant)} {comparison.status}: {comparison.rate:.2%} vs {comparison.control_rate:.2%} "
                f"({comparison.difference * 100:+.2f} points), p = {comparison.p_value:.3g} "
                f"({comparison.test}) {mark}"
            )
    for name, why in off.items():
        out.print(f"[red]{escape(name)} is switched off[/]: {escape(why)}")
    out.print(f"[dim]significant: p < {vr.ALPHA}, two-sided; each rate is per email sent[/]")


@templates_app.command("variant")
def variant_switch(
    ctx: typer.Context,
    template_id: Annotated[str, typer.Argument(help="The template.")],
    variant: Annotated[str, typer.Argument(help="The variant.")],
    state: Annotated[str, typer.Argument(help="on or off.")],
    json_output: JsonOption = False,
) -> None:
    """Switch an A/B variant on (its counts start again) or off by hand; workers see it within their cache time."""
    import time

    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.adapters.variants import DynamoVariantLedger
    from mailwright.errors import TransientError
    from mailwright.variants import SwitchedOff

    if state not in ("on", "off"):
        fail(f"the state must be on or off, not {state!r}", EXIT_USAGE)
    target = resolve(ctx)
    ledger = DynamoVariantLedger(target.session().client("dynamodb"), target.tables["idempotency"])
    try:
        if state == "on":
            changed = ledger.switch_on(template_id, variant)
        else:
            names = ledger.read(template_id).names
            if variant not in names:
                fail(f"{template_id} has counted no variant {variant!r} (known: {', '.join(names) or 'none'})")
            others = [name for name in names if name != variant]
            off = SwitchedOff(reason="manual", at=time.time(), actor=os.environ.get("USER", "cli"), note="by hand")
            changed = ledger.switch_off(template_id, variant, off, others=others)
    except (ClientError, BotoCoreError, TransientError) as exc:
        fail(f"could not switch {variant} of {template_id}: {exc}")
    if json_output:
        emit_json({"template": template_id, "variant": variant, "state": state, "changed": changed})
        return
    if changed:
        console().print(f"{variant} of {template_id} is {state}")
    elif state == "on":
        console().print(f"{variant} of {template_id} was on already")
    else:
        fail(f"{variant} of {template_id} is off already, or it is the last variant on")

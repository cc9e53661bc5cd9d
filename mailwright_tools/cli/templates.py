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
            out.print(f"{mark} {check.template} [dim]({check.locale})[/]")
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
def upload(ctx: typer.Context, templates_dir: TemplatesDirOption = None, json_output: JsonOption = False) -> None:
    """Check every template (as `templates validate`), bundle it and upload it to the target stack's templates
    bucket (new S3 versions); nothing is uploaded when a template fails the checks."""
    from botocore.exceptions import BotoCoreError, ClientError

    from mailwright.errors import TemplateFormatError
    from mailwright_tools.provision import upload_template_versions
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
    try:
        versions = upload_template_versions(target.session().client("s3"), target.templates_bucket, templates_dir)
    except TemplateFormatError as exc:
        fail(f"not uploaded, a template is malformed: {exc}")
    except (ClientError, BotoCoreError) as exc:
        fail(f"upload to s3://{target.templates_bucket} failed: {exc}")
    if json_output:
        emit_json({"bucket": target.templates_bucket, "target": target.describe(), "uploaded": versions})
    else:
        out = console()
        for template_id, version in versions.items():
            out.print(f"uploaded {template_id} [dim](version {version})[/]")
        out.print(f"{len(versions)} templates in s3://{target.templates_bucket} ({target.describe()})")


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

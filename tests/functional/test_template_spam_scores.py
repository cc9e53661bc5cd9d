"""SpamAssassin's local rules score every shipped template, in every locale, at most 1.0.

Each template renders with its sample data into the full MIME message the
worker sends (multipart/alternative text + HTML, the From name, and the
List-Unsubscribe headers of non-essential mail). All of them go through one
`spamassassin -t -L` run over an mbox (its rule set takes seconds to load),
with Bayes off so a run learns nothing and depends on nothing learnt.
Debian's `spamassassin` is installed by `make deps`; without it the test fails
and says so.
"""

from __future__ import annotations

import mailbox
import re
import shutil
import subprocess
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from pathlib import Path

import pytest

from mailwright.templates import Renderer, load_template_tree
from mailwright_tools.fakes import TEMPLATES_DIR
from mailwright_tools.template_checks import provided_variables

pytestmark = pytest.mark.slow

MAX_SCORE = 1.0
CASE_HEADER = "X-Mailwright-Case"
_STATUS = re.compile(r"score=(?P<score>-?[\d.]+)\s+required=[\d.]+\s+tests=(?P<tests>[\w,\s]*?)\s+autolearn", re.S)


def messages() -> dict[str, EmailMessage]:
    """Every shipped template and locale as the MIME message the worker would send, by `template/locale`."""
    built = {}
    for template_id, bundle in sorted(load_template_tree(TEMPLATES_DIR).items()):
        provided = provided_variables(
            bundle,
            recipient="jane.doe@example.com",
            postal_address="Example Co., 1 Example Street, Springfield, IL 62701, USA",
            base_url="https://mail.example.com/unsubscribe",
        )
        for locale in sorted(bundle.locales):
            rendered = Renderer().render(
                bundle, locale=locale, data=dict(bundle.metadata.sample_data), provided=provided
            )
            message = EmailMessage()
            message["From"] = formataddr((bundle.metadata.from_name or "", "no-reply@mail.example.com"))
            message["To"] = "jane.doe@example.com"
            message["Subject"] = rendered.subject
            message["Date"] = formatdate(localtime=False)
            message["Message-ID"] = make_msgid(domain="mail.example.com")
            message[CASE_HEADER] = f"{template_id}/{locale}"
            if "unsubscribe_url" in provided:
                message["List-Unsubscribe"] = f"<{provided['unsubscribe_url']}>"
                message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            message.set_content(rendered.text)
            message.add_alternative(rendered.html, subtype="html")
            built[f"{template_id}/{locale}"] = message
    return built


def control() -> EmailMessage:
    """A message SpamAssassin must score high, run alongside, so a harness that scores nothing cannot pass."""
    message = EmailMessage()
    message["From"] = "winner@example.com"
    message["To"] = "jane.doe@example.com"
    message["Subject"] = "YOU HAVE WON $1,000,000 - CLAIM NOW!!!"
    message[CASE_HEADER] = "control"
    message.set_content(
        '<p style="font-size:1px;color:#ffffff">hidden</p><p>Dear friend, 100% FREE cash, no risk. Claim now!!!</p>',
        subtype="html",
    )
    return message


def spamassassin_scores(tmp_path: Path) -> dict[str, tuple[float, str]]:
    """Score and rules hit of every message, by `template/locale`, from one local-rules-only run."""
    binary = shutil.which("spamassassin")
    if binary is None:
        pytest.fail(
            "spamassassin is not installed: `make deps` installs Debian's package (apt-get install spamassassin)"
        )
    inbox = mailbox.mbox(str(tmp_path / "in.mbox"))
    for message in [*messages().values(), control()]:
        inbox.add(message)
    inbox.close()
    # report_safe 0: a message scored as spam keeps its headers instead of being wrapped as an attachment.
    command = [binary, "-L", "-t", "-x", "--mbox", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0", "--cf=report_safe 0"]
    with (tmp_path / "in.mbox").open("rb") as source:
        result = subprocess.run(command, stdin=source, capture_output=True, check=False, timeout=300)  # noqa: S603
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    (tmp_path / "out.mbox").write_bytes(result.stdout)
    scores = {}
    outbox = mailbox.mbox(str(tmp_path / "out.mbox"))
    try:
        for scored in outbox:
            status = _STATUS.search(str(scored["X-Spam-Status"]))
            assert status, scored["X-Spam-Status"]
            rules = re.sub(r"\s+", "", status["tests"])
            scores[str(scored[CASE_HEADER])] = (float(status["score"]), rules)
    finally:
        outbox.close()
    return scores


def test_every_shipped_template_scores_at_most_one(tmp_path: Path) -> None:
    scores = spamassassin_scores(tmp_path)

    assert set(scores) == {*messages(), "control"}
    assert scores.pop("control")[0] > 5.0, "SpamAssassin did not score the control message: is it running its rules?"
    too_high = {case: found for case, found in scores.items() if found[0] > MAX_SCORE}
    assert not too_high, f"over {MAX_SCORE}: {too_high}"
    print("\n".join(f"{case}: {score} ({rules})" for case, (score, rules) in sorted(scores.items())))

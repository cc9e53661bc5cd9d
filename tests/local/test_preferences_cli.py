"""`mailwright preferences` end to end on the local stack: set then get, the resubscribe guard, bulk import."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

from mailwright_tools.local.stack import LocalStack
from mailwright_tools.state import StateDir
from tests.local.conftest import Cli, run_cli, wait_until
from tests.local.test_producer import outbox_messages


def test_set_then_get(cli: Cli) -> None:
    changed = cli(
        "preferences", "set", "user-ana", "--timezone", "Europe/Paris", "--quiet-hours", "21:00-08:00",
        "--locale", "fr_ca", "--opt-out", "marketing", "--actor", "ops-team", "--note", "asked by phone", "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    assert changed.json()["changes"] == [
        "opt_out:marketing",
        "locale:fr-CA",
        "timezone:Europe/Paris",
        "quiet_hours:21:00-08:00",
    ]

    got = cli("preferences", "get", "user-ana", "--json")

    assert got.exit_code == 0, got.stderr
    data = got.json()
    assert (data["timezone"], data["quiet_hours"], data["locale"]) == ("Europe/Paris", "21:00-08:00", "fr-CA")
    assert data["receives"] == {"security": True, "transactional": True, "product": True, "marketing": False}
    assert data["user_opted_out"] == []  # the producer's opt-out, not the user's
    [audit] = data["history"]
    assert (audit["actor"], audit["source"], audit["note"]) == ("ops-team", "cli", "asked by phone")
    assert audit["changes"][0] == "opt_out:marketing" and not audit["overrode_user_choice"]

    # Setting the same again changes nothing and adds nothing to the trail
    again = cli("preferences", "set", "user-ana", "--timezone", "Europe/Paris", "--json").json()
    assert again["changed"] is False
    assert len(cli("preferences", "get", "user-ana", "--json").json()["history"]) == 1
    # Text output for people
    assert "quiet_hours: 21:00-08:00" in cli("preferences", "get", "user-ana").stdout


def test_bad_input_is_exit_2_and_changes_nothing(cli: Cli) -> None:
    for args in (
        ["--timezone", "Mars/Base"],
        ["--quiet-hours", "9pm-8am"],
        ["--opt-out", "security"],
        ["--opt-out", "marketing", "--opt-in", "marketing"],
        [],
    ):
        result = cli("preferences", "set", "user-bad", *args)
        assert result.exit_code == 2, (args, result.stdout)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert cli("preferences", "get", "user-bad", "--json").json()["stored"] is False


def test_resubscribing_a_user_who_unsubscribed_themselves_needs_the_override(cli: Cli, local_stack: LocalStack) -> None:
    # Given a newsletter in the outbox, and the user unsubscribing through its link (their own choice)
    sent = cli(
        "send", "--to", "carla@example.com", "--user-id", "user-carla", "--template", "newsletter",
        "--data", json.dumps({"user_name": "Carla", "headline": "News", "articles": []}),
    )  # fmt: skip
    assert sent.exit_code == 0, sent.stderr
    message = wait_until(lambda: outbox_messages(local_stack).get("carla@example.com"))
    link = str(message["List-Unsubscribe"]).strip("<>")
    one_click = urllib.request.Request(link, data=b"List-Unsubscribe=One-Click", method="POST")  # noqa: S310
    with urllib.request.urlopen(one_click, timeout=10) as answer:  # noqa: S310 - the local endpoint
        assert answer.status == 200
    assert cli("preferences", "get", "user-carla", "--json").json()["user_opted_out"] == ["marketing"]

    # When the producer opts them back in without the override: exit 2, nothing changes
    refused = cli("preferences", "set", "user-carla", "--opt-in", "marketing")
    assert refused.exit_code == 2
    assert "chose themselves not to get marketing" in refused.stderr and "--override-user-choice" in refused.stderr
    # With the override but no note: exit 2 too
    assert cli("preferences", "set", "user-carla", "--opt-in", "marketing", "--override-user-choice").exit_code == 2
    assert cli("preferences", "get", "user-carla", "--json").json()["opted_out"] == ["marketing"]

    # Then with both it is lifted, and audited as an override
    done = cli(
        "preferences", "set", "user-carla", "--opt-in", "marketing", "--override-user-choice",
        "--note", "renewed consent by phone", "--actor", "ops-team", "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert done.json()["overrode_user_choice"] is True
    [audit] = cli("preferences", "get", "user-carla", "--json").json()["history"]
    assert audit["overrode_user_choice"] and audit["note"] == "renewed consent by phone"

    # And the page the link opens sets the user's time zone and quiet hours
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]
    form = urllib.parse.urlencode(
        {"token": token, "action": "save", "receive": "marketing", "timezone": "America/New_York",
         "quiet_start": "22:00", "quiet_end": "07:00"}, doseq=True,
    ).encode()  # fmt: skip
    page = urllib.request.Request(link.split("?")[0], data=form, method="POST")  # noqa: S310
    with urllib.request.urlopen(page, timeout=10) as answer:  # noqa: S310
        assert answer.status == 200
    after = cli("preferences", "get", "user-carla", "--json").json()
    assert (after["timezone"], after["quiet_hours"]) == ("America/New_York", "22:00-07:00")


def test_import_checks_every_row_first(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "optouts.csv"
    path.write_text("user_id,opt_out\nimp-1,marketing\nimp-2,security\nimp-3,all\n", encoding="utf-8")

    # A bad row: nothing is applied, and the row is named by its line
    refused = cli("preferences", "import", str(path))
    assert refused.exit_code == 2
    assert "line 3:" in refused.stderr and "'security' is essential" in refused.stderr
    assert cli("preferences", "get", "imp-1", "--json").json()["stored"] is False

    # --skip-invalid applies the others; a re-run changes nothing
    applied = cli("preferences", "import", str(path), "--skip-invalid", "--json").json()
    assert (applied["changed"], applied["unchanged"]) == (2, 0)
    assert applied["skipped"] == [{"line": 3, "error": applied["skipped"][0]["error"]}]
    again = cli("preferences", "import", str(path), "--skip-invalid", "--json").json()
    assert (again["changed"], again["unchanged"]) == (0, 2)
    assert cli("preferences", "get", "imp-1", "--json").json()["opted_out"] == ["marketing"]
    imp3 = cli("preferences", "get", "imp-3", "--json").json()
    assert imp3["unsubscribed_all"] and imp3["history"][0]["source"] == "import"


def test_bad_input_is_exit_2_without_a_stack(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")

    assert run_cli(state, "preferences", "set", "u1", "--timezone", "Mars/Base").exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("email,opt_out\n", encoding="utf-8")
    assert run_cli(state, "preferences", "import", str(bad)).exit_code == 2

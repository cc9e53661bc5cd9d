"""CSV bulk sends: columns to requests, every bad row with its line, keys from the batch id and the row's content."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright_tools.bulk import BulkInputError, default_batch_id, parse_mapping, read_csv
from mailwright_tools.request_checks import KnownTemplates
from tests.unit.conftest import REPO

TEMPLATES = KnownTemplates.read(REPO / "templates")


def write(tmp_path: Path, text: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_columns_become_fields_and_template_variables_with_dotted_nesting(tmp_path: Path) -> None:
    path = write(
        tmp_path, "email,user_name,login_link,locale,user_id,extra.note\nJane@Example.com,Jane,https://x/l,fr-ca,,hi\n"
    )

    plan = read_csv(
        path, template="welcome_email", mapping=parse_mapping(["email=recipient_email"]), templates=TEMPLATES
    )

    assert plan.problems == []
    [row] = plan.rows
    assert row.line == 2
    assert row.model.recipient_email == "jane@example.com"
    assert row.model.locale == "fr-CA" and row.model.user_id is None  # an empty cell is no user id
    assert row.model.template_data == {"user_name": "Jane", "login_link": "https://x/l", "extra": {"note": "hi"}}
    assert plan.batch_id == default_batch_id("welcome_email", path) == "welcome_email-people.csv"


def test_every_bad_row_is_listed_with_the_line_it_starts_on(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "recipient_email,user_name,login_link\n"
        "ok@example.com,Ok,https://x\n"
        "not-an-address,Bad,https://x\n"
        "\n"
        '"multi\nline@example.com",Two,https://x\n'
        "short@example.com\n"
        "fine@example.com,,https://x\n",
    )

    plan = read_csv(path, template="welcome_email", templates=TEMPLATES)

    assert [line for line, _ in plan.problems] == [3, 5, 7]
    assert "recipient_email" in plan.problems[0][1]
    assert plan.problems[2] == (7, "1 fields, the header has 3")
    assert [row.line for row in plan.rows] == [2, 8]


def test_template_checks_apply_to_every_row(tmp_path: Path) -> None:
    path = write(tmp_path, "recipient_email,user_name\na@example.com,A\n")

    plan = read_csv(path, template="welcome_email", templates=TEMPLATES)

    assert plan.problems == [(2, "template welcome_email needs template_data: login_link")]


def test_keys_depend_on_the_batch_and_the_row_content_only(tmp_path: Path) -> None:
    first = write(
        tmp_path, "recipient_email,user_name,login_link\na@example.com,A,https://x\nb@example.com,B,https://x\n"
    )
    fixed = write(
        tmp_path,
        "recipient_email,user_name,login_link\na@example.com,A,https://x\nb@example.com,Bea,https://x\n",
        "v2.csv",
    )

    one = read_csv(first, template="welcome_email", batch_id="launch")
    two = read_csv(fixed, template="welcome_email", batch_id="launch")
    other_batch = read_csv(first, template="welcome_email", batch_id="relaunch")

    assert one.rows[0].request_id == two.rows[0].request_id  # unchanged row: same key, deduped by the worker
    assert one.rows[1].request_id != two.rows[1].request_id  # the fixed row is new
    assert {r.request_id for r in one.rows}.isdisjoint(r.request_id for r in other_batch.rows)


def test_a_repeated_row_is_published_once(tmp_path: Path) -> None:
    path = write(
        tmp_path, "recipient_email,user_name,login_link\na@example.com,A,https://x\nA@example.com,A,https://x\n"
    )

    plan = read_csv(path, template="welcome_email")

    assert (len(plan.rows), plan.repeats) == (1, [(3, 2)])


@pytest.mark.parametrize(
    ("text", "mapping", "message"),
    [
        ("name,user_name\nx,y\n", [], "no column maps to recipient_email"),
        ("recipient_email,a,a\nx,y,z\n", [], "names a column twice: a"),
        ("recipient_email,first name\nx,y\n", [], "--map first name=NAME"),
        ("recipient_email,x\nx,y\n", ["nope=recipient_email"], "does not have: nope"),
        ("recipient_email,a,a.b\nx,y,z\n", [], "a is both a value and holds nested columns"),
        ("recipient_email\n", [], "no rows under the header"),
        ("", [], "no header row"),
    ],
)
def test_unusable_files_and_options_are_refused_whole(
    tmp_path: Path, text: str, mapping: list[str], message: str
) -> None:
    with pytest.raises(BulkInputError, match=message):
        read_csv(write(tmp_path, text), template="welcome_email", mapping=parse_mapping(mapping))


def test_a_malformed_map_is_refused() -> None:
    with pytest.raises(BulkInputError, match="expected COLUMN=FIELD"):
        parse_mapping(["email"])
    assert parse_mapping(["Notes=-", "First=template_data.first_name"]) == {"Notes": "-", "First": "first_name"}

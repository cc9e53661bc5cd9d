"""Bulk opt-outs from CSV: every row checked first, errors by line, idempotent on a re-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright.preference_changes import SOURCE_IMPORT, PreferenceAdmin
from mailwright_tools.fakes import FakePreferenceTable, StaticAddressKeys
from mailwright_tools.preference_import import ImportFileError, apply_opt_outs, read_opt_outs


def csv_file(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "optouts.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_valid_rows_are_read_with_their_lines(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "user_id,opt_out\nu1,marketing\n\nu2, Marketing ; product \nu3,all\n")

    rows, errors = read_opt_outs(path)

    assert errors == []
    assert [(row.line, row.user_id) for row in rows] == [(2, "u1"), (4, "u2"), (5, "u3")]
    assert rows[1].change.opt_out == {"marketing", "product"}
    assert rows[2].change.unsubscribe_all and rows[2].change.opt_out == frozenset()


def test_columns_may_come_in_any_order_and_a_bom_is_fine(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "opt_out,user_id\nproduct,u1\n", encoding="utf-8-sig")

    rows, errors = read_opt_outs(path)

    assert errors == [] and rows[0].user_id == "u1" and rows[0].change.opt_out == {"product"}


def test_every_bad_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "user_id,opt_out\n"
        "u1,marketing\n"  # 2: fine
        "u2,security\n"  # 3: essential
        ",marketing\n"  # 4: no user
        "u4,\n"  # 5: nothing to opt out of
        "u5,all;marketing\n"  # 6: all and more
        "u6,marketing,extra\n"  # 7: a field too many
        "audit#u7,product\n",  # 8: reserved
    )

    rows, errors = read_opt_outs(path)

    assert [row.line for row in rows] == [2]
    assert [error.line for error in errors] == [3, 4, 5, 6, 7, 8]
    assert "'security' is essential" in str(errors[0]) and str(errors[0]).startswith("line 3: ")
    assert "2 fields" not in str(errors[4]) and "3 fields, expected 2" in str(errors[4])


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("email,opt_out\nx,marketing\n", "must name the columns user_id, opt_out")],
)
def test_a_file_that_is_not_an_import_is_refused_as_a_whole(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        read_opt_outs(csv_file(tmp_path, text))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        read_opt_outs(tmp_path / "nope.csv")


def test_applying_is_audited_per_row_and_idempotent(tmp_path: Path) -> None:
    table = FakePreferenceTable()
    admin = PreferenceAdmin(table, address_keys=StaticAddressKeys(), clock=lambda: 10.0)
    rows, _ = read_opt_outs(csv_file(tmp_path, "user_id,opt_out\nu1,marketing\nu2,all\n"))

    first = apply_opt_outs(admin, rows, actor="ops", note="import optouts.csv")
    again = apply_opt_outs(admin, rows, actor="ops", note="import optouts.csv")

    assert (first.changed, first.unchanged) == (2, 0)
    assert (again.changed, again.unchanged) == (0, 2)
    assert table.records["u1"].preferences.opted_out == {"marketing"}
    assert table.records["u2"].preferences.unsubscribed_all
    [audit] = admin.history("u1")
    assert (audit.source, audit.note, audit.changes) == (
        SOURCE_IMPORT,
        "import optouts.csv; line 2",
        ("opt_out:marketing",),
    )

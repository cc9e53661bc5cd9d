"""The studio's previews and checks without a stack (mailwright_tools.studio.Studio): no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailwright_tools.studio import Studio, StudioError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def studio() -> Studio:
    return Studio(REPO / "templates", None, postal_address="Example Co., 1 Example Street, Springfield, USA",
                  base_url="https://example.com/unsubscribe", author="tester")  # fmt: skip


def parts(studio: Studio, template: str = "welcome_email", locale: str = "en") -> dict[str, str]:
    found: dict[str, str] = studio.describe(template)["locales"][locale]
    return found


def test_without_a_stack_the_repository_templates_are_listed_and_preview(studio: Studio) -> None:
    assert studio.template_ids() == [
        "activity_digest",
        "newsletter",
        "order_confirmation",
        "password_reset",
        "welcome_email",
    ]
    described = studio.describe("welcome_email")
    assert set(described["locales"]) == {"en", "fr"} and described["versions"] == []

    result = studio.preview("welcome_email", "fr", parts(studio, locale="fr"))

    assert result["ok"] and result["problems"] == []
    assert "John" in result["rendered"]["subject"] and "<html" in result["rendered"]["html"]


def test_problems_name_the_file_and_line(studio: Studio) -> None:
    edit = parts(studio)
    undeclared = studio.preview("welcome_email", "en", {**edit, "subject": "Hi {{ nickname }}"})
    broken = studio.preview("welcome_email", "en", {**edit, "text": "{% if %}"})

    assert not undeclared["ok"]
    assert any("nickname" in p["message"] and p["file"].endswith("subject.txt") for p in undeclared["problems"])
    assert not broken["ok"] and broken["problems"][0]["file"].startswith("welcome_email/en/body.txt")
    assert broken["problems"][0]["line"] == 1


def test_publishing_and_sending_need_a_stack_and_bad_requests_are_refused(studio: Studio) -> None:
    edit = parts(studio)
    with pytest.raises(StudioError, match="no stack") as refused:
        studio.publish("welcome_email", "en", edit, note="n", author="a")
    assert refused.value.status == 409
    with pytest.raises(StudioError) as unknown:
        studio.describe("../etc/passwd")
    assert unknown.value.status == 404
    with pytest.raises(StudioError, match="no locale"):
        studio.preview("welcome_email", "de", edit)
    with pytest.raises(StudioError, match="required"):
        studio.preview("welcome_email", "en", {"subject": "x"})

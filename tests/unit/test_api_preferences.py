"""The preferences routes of the API handler: GET|PATCH /v1/users/{user_id}/preferences, over the fake table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mailwright.api_services import ApiServices
from mailwright.handlers import api
from mailwright.preference_changes import SOURCE_API, PreferenceAdmin
from mailwright.status import StatusService
from mailwright_tools.fakes import (
    FakeClock,
    FakeMessageLog,
    FakePreferenceTable,
    FakeProducerDirectory,
    FakeRecipientIndex,
    StaticAddressKeys,
)
from mailwright_tools.local.api_server import rest_api_event

USER = "user-42"
PATH = f"/v1/users/{USER}/preferences"
CALLER = "arn:aws:iam::123456789012:role/platform-ops"


@pytest.fixture
def table() -> FakePreferenceTable:
    return FakePreferenceTable()


@pytest.fixture
def services(table: FakePreferenceTable) -> ApiServices:
    log = FakeMessageLog()
    producers = FakeProducerDirectory()
    producers.add("k3y", "shop")
    return ApiServices(
        status=StatusService(log, FakeRecipientIndex(log), StaticAddressKeys()),
        producers=producers,
        preferences=PreferenceAdmin(table, address_keys=StaticAddressKeys(), clock=FakeClock()),
    )


def call(
    services: ApiServices, method: str, path: str = PATH, body: Any = None, *, key: str | None = None
) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode() if body is not None else b""
    event = rest_api_event(method, path, body=raw, caller_arn=None if key else CALLER)
    if key:
        event["requestContext"]["identity"]["apiKeyId"] = key
    answer = api.handle(services, event)
    assert answer["multiValueHeaders"]["Cache-Control"] == ["no-store"]
    return int(answer["statusCode"]), json.loads(answer["body"])


def test_an_unknown_user_has_the_defaults(services: ApiServices) -> None:
    assert call(services, "GET") == (
        200,
        {
            "user_id": USER,
            "locale": None,
            "timezone": None,
            "quiet_hours": None,
            "opted_out": [],
            "unsubscribed_all": False,
            "updated_at": None,
        },
    )


def test_patch_timezone_and_quiet_hours_then_get_them(services: ApiServices, table: FakePreferenceTable) -> None:
    status, body = call(
        services, "PATCH", body={"timezone": "Europe/Paris", "quiet_hours": "21:00-08:00", "opt_out": ["marketing"]}
    )

    assert status == 200
    assert (body["timezone"], body["quiet_hours"], body["opted_out"]) == ("Europe/Paris", "21:00-08:00", ["marketing"])
    assert call(services, "GET") == (200, body)
    # Audited through the domain service, the IAM principal as the actor.
    [audit] = table.trails[USER]
    assert (audit.actor, audit.source) == (CALLER, SOURCE_API)
    assert audit.changes == ("opt_out:marketing", "timezone:Europe/Paris", "quiet_hours:21:00-08:00")


def test_a_producers_change_names_the_producer_as_actor(services: ApiServices, table: FakePreferenceTable) -> None:
    assert call(services, "PATCH", body={"locale": "fr-CA"}, key="k3y")[1]["locale"] == "fr-CA"

    assert [a.actor for a in table.trails[USER]] == ["producer:shop"]


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"timezone": "Mars/Olympus"}, "invalid_preferences", "Mars/Olympus"),
        ({"quiet_hours": "25:00-08:00"}, "invalid_preferences", "25:00"),
        ({"opt_out": ["lottery"]}, "invalid_preferences", "not a known category"),
        ({"timezone": "Europe/Paris", "colour": "blue"}, "invalid_body", "colour"),
        ({"unsubscribe_all": "yes"}, "invalid_body", "unsubscribe_all"),
    ],
)
def test_invalid_input_is_400_and_changes_nothing(
    services: ApiServices, table: FakePreferenceTable, body: dict[str, Any], code: str, says: str
) -> None:
    status, answer = call(services, "PATCH", body=body)

    assert status == 400
    assert answer["error"]["code"] == code and says in answer["error"]["message"]
    assert table.records == {} and table.trails == {}


def test_a_malformed_user_id_is_400(services: ApiServices) -> None:
    status, answer = call(services, "GET", f"/v1/users/{'u' * 129}/preferences")

    assert (status, answer["error"]["code"]) == (400, "invalid_user_id")


def test_resubscribing_a_user_who_unsubscribed_themselves_needs_override_and_note(
    services: ApiServices, table: FakePreferenceTable
) -> None:
    table.set_choices(USER, opted_out=frozenset(), unsubscribed_all=True, source="page", updated_at=1.0)

    status, answer = call(services, "PATCH", body={"resubscribe": True})
    assert (status, answer["error"]["code"]) == (409, "user_choice")
    status, answer = call(services, "PATCH", body={"resubscribe": True, "override_user_choice": True})
    assert (status, answer["error"]["code"]) == (400, "invalid_preferences")
    assert call(services, "GET")[1]["unsubscribed_all"] is True and USER not in table.trails

    status, answer = call(
        services, "PATCH", body={"resubscribe": True, "override_user_choice": True, "note": "ticket 881"}
    )
    assert (status, answer["unsubscribed_all"]) == (200, False)
    [audit] = table.trails[USER]
    assert (audit.actor, audit.note, audit.overrode_user_choice, audit.changes) == (
        CALLER,
        "ticket 881",
        True,
        ("resubscribe",),
    )


def test_an_api_without_preferences_says_so(services: ApiServices) -> None:
    bare = ApiServices(status=services.status)

    assert call(bare, "GET")[0] == 503

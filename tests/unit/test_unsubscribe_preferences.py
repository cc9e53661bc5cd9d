"""Consent changes (PreferenceService), the endpoint's settings and environment, and its form parsing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from infra.config import WorkerResources, load_config, unsubscribe_environment, worker_environment
from mailwright.address_keys import AddressHasher, legacy_user_key
from mailwright.constants import CATEGORIES, ESSENTIAL_CATEGORIES, Env
from mailwright.errors import ConfigurationError
from mailwright.pages import CATEGORY_TEXT
from mailwright.ports import Preferences
from mailwright.preferences import OPTIONAL_CATEGORIES, CategoryNotAllowedError, PreferenceService
from mailwright.settings import UnsubscribeSettings
from mailwright.web import MAX_FORM_FIELDS, WebRequest, parse_form
from mailwright_tools.fakes import FAKE_ADDRESS_KEYRING, StaticAddressKeys
from tests.unit.test_tokens import legacy_token
from tests.unit.unsubscribe_fakes import KEY, NOW, MemoryPreferences, build

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def memory() -> MemoryPreferences:
    """Empty in-memory preferences."""
    return MemoryPreferences()


@pytest.fixture
def service(memory: MemoryPreferences) -> PreferenceService:
    """A PreferenceService at a fixed time."""
    return PreferenceService(memory, memory, address_keys=StaticAddressKeys(), clock=lambda: NOW)


def test_a_user_without_a_record_receives_everything(service: PreferenceService) -> None:
    assert service.get("nobody") == Preferences("nobody")


def test_optional_categories_are_the_non_essential_ones() -> None:
    assert set(OPTIONAL_CATEGORIES) == set(CATEGORIES) - ESSENTIAL_CATEGORIES
    assert set(CATEGORY_TEXT) == set(CATEGORIES)
    assert all(text.name and text.description for text in CATEGORY_TEXT.values())


@pytest.mark.parametrize("category", [*sorted(ESSENTIAL_CATEGORIES), "nonsense"])
def test_essential_or_unknown_categories_cannot_be_opted_out(
    service: PreferenceService, memory: MemoryPreferences, category: str
) -> None:
    with pytest.raises(CategoryNotAllowedError):
        service.opt_out("u1", category)
    assert memory.writes == 0


def test_opt_out_records_when_and_how(service: PreferenceService, memory: MemoryPreferences) -> None:
    preferences = service.opt_out("u1", "product")

    assert preferences.opted_out == {"product"}
    assert not preferences.allows("product") and preferences.allows("marketing")
    assert (memory.items["u1"]["updated_at"], memory.items["u1"]["source"]) == (NOW, "one_click")


def test_update_drops_essential_and_unknown_categories(service: PreferenceService, memory: MemoryPreferences) -> None:
    preferences = service.update(
        "u1", opted_out={"security", "transactional", "marketing", "bogus"}, unsubscribed_all=True
    )

    assert preferences.opted_out == {"marketing"}
    assert preferences.unsubscribed_all
    assert all(preferences.allows(category) for category in ESSENTIAL_CATEGORIES)
    assert memory.items["u1"]["source"] == "preference_center"


# -- settings and environment ----------------------------------------------------------------


def test_settings_parse_the_endpoints_environment() -> None:
    env = unsubscribe_environment(
        preferences_table="prefs",
        unsubscribe_secret_arn="arn:secret",
        address_key_secret_arn="arn:keys",
        suppression_table="s",
    )

    assert UnsubscribeSettings.from_env(env) == UnsubscribeSettings("prefs", "arn:secret", "arn:keys", "s")


def test_missing_settings_are_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        UnsubscribeSettings.from_env({})

    assert Env.PREFERENCES_TABLE in str(caught.value) and Env.UNSUBSCRIBE_SECRET_ARN in str(caught.value)
    assert Env.ADDRESS_KEY_SECRET_ARN in str(caught.value)


RESOURCES = WorkerResources(
    templates_bucket="b",
    preferences_table="p",
    suppression_table="s",
    idempotency_table="i",
    messages_table="m",
    configuration_set="c",
    unsubscribe_secret_arn="arn",
    address_key_secret_arn="arn:keys",
    unsubscribe_base_url="https://abc123.lambda-url.us-east-1.on.aws/",
)


def test_workers_link_to_the_stacks_endpoint_by_default() -> None:
    config = load_config(REPO / "cdk.json")
    env = worker_environment(config=config, lane=config.lanes["bulk"], queue_url="q", resources=RESOURCES)

    assert env[Env.UNSUBSCRIBE_BASE_URL] == RESOURCES.unsubscribe_base_url


def test_a_configured_base_url_wins_over_the_endpoint() -> None:
    # A custom domain in front of the function URL (CloudFront, an API gateway): links use the domain.
    config = replace(load_config(REPO / "cdk.json"), unsubscribe_base_url="https://mail.example.com/unsubscribe")
    env = worker_environment(config=config, lane=config.lanes["bulk"], queue_url="q", resources=RESOURCES)

    assert env[Env.UNSUBSCRIBE_BASE_URL] == "https://mail.example.com/unsubscribe"


# -- form parsing ----------------------------------------------------------------------------------


def test_urlencoded_form_keeps_repeated_fields() -> None:
    fields = parse_form(b"receive=product&receive=marketing&token=a.b", "application/x-www-form-urlencoded")

    assert fields == {"receive": ["product", "marketing"], "token": ["a.b"]}


def test_multipart_form_skips_files() -> None:
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="action"\r\n\r\nsave\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="upload"; filename="a.txt"\r\n\r\nhello\r\n'
        b"--XX--\r\n"
    )

    assert parse_form(body, "multipart/form-data; boundary=XX") == {"action": ["save"]}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
        (b"garbage", "multipart/form-data; boundary=XX"),
        (b"&".join([b"a=1"] * (MAX_FORM_FIELDS + 1)), "application/x-www-form-urlencoded"),
    ],
)
def test_other_or_oversized_bodies_give_no_fields(body: bytes, content_type: str) -> None:
    assert parse_form(body, content_type) == {}


def test_query_falls_back_to_query_string_parameters() -> None:
    event = {"requestContext": {"http": {"method": "GET"}}, "queryStringParameters": {"token": "t", "view": "v"}}

    request = WebRequest.from_event(event)

    assert (request.method, request.query_value("token"), request.query_value("view")) == ("GET", "t", "v")


def test_a_body_that_is_not_base64_gives_no_fields() -> None:
    event = {
        "requestContext": {"http": {"method": "POST"}},
        "body": "not base64!",
        "isBase64Encoded": True,
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }

    assert WebRequest.from_event(event).form == {}


# -- links made before keyed address hashes --------------------------------------------


def test_an_old_link_of_a_user_without_user_id_changes_the_current_users_preferences() -> None:
    hasher = AddressHasher(FAKE_ADDRESS_KEYRING, readable_from=0)
    service, memory, _ = build(address_keys=StaticAddressKeys(hasher))
    legacy = legacy_user_key("jane@example.com")
    memory.put(legacy, opted_out={"product"}, locale="fr")
    # A link in an inbox from before: payload readable, user id the unkeyed hash of the address
    token = legacy_token(legacy, "marketing", int(time.time()) + 86400, key=KEY)

    view = service.view(token)
    assert view.preferences.opted_out == frozenset({"product"}) and view.preferences.locale == "fr"

    done = service.one_click(token)

    current = hasher.user_key("jane@example.com")
    assert memory.items[current]["opted_out"] == {"marketing"}
    # What the workers read (both forms, merged) is the user's whole consent.
    assert done.preferences.opted_out == frozenset({"product", "marketing"})
    assert done.preferences.user_id == current


def test_saving_the_form_through_an_old_link_lifts_opt_outs_in_every_stored_form() -> None:
    hasher = AddressHasher(FAKE_ADDRESS_KEYRING, readable_from=0)
    service, memory, _ = build(address_keys=StaticAddressKeys(hasher))
    legacy = legacy_user_key("jane@example.com")
    memory.put(legacy, opted_out={"product", "marketing"}, unsubscribed_all=True)
    token = legacy_token(legacy, "marketing", int(time.time()) + 86400, key=KEY)

    done = service.save(token, receive=["product", "marketing"])

    # Re-subscribing works at once: no stale opt-out left in the older form keeps blocking mail.
    assert done.preferences.opted_out == frozenset() and not done.preferences.unsubscribed_all
    current = hasher.user_key("jane@example.com")
    for form in (legacy, current):
        assert "opted_out" not in memory.items[form] and memory.items[form]["unsubscribed_all"] is False

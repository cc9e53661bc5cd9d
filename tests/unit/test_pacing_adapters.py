"""The SES account reader (botocore Stubber: moto has no GetAccount) and the daily-quota refusal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from mailwright.adapters.ses import SesAccountReader, SesEmailSender
from mailwright.errors import DailyQuotaExceededError, ThrottledError, TransientError
from mailwright.ports import OutboundEmail, SendQuota


@pytest.fixture
def ses() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield client, stubber


def test_the_account_reader_returns_the_send_quota(ses: tuple[Any, Stubber]) -> None:
    client, stubber = ses
    stubber.add_response(
        "get_account",
        {"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 1234.0}},
        {},
    )
    assert SesAccountReader(client).read() == SendQuota(14.0, 50000.0, 1234.0)


def test_an_unreadable_account_is_a_transient_error(ses: tuple[Any, Stubber]) -> None:
    client, stubber = ses
    stubber.add_client_error("get_account", service_error_code="TooManyRequestsException", http_status_code=429)
    with pytest.raises(TransientError):
        SesAccountReader(client).read()


EMAIL = OutboundEmail(
    from_address="no-reply@example.com",
    to_address="jane@example.com",
    subject="s",
    html="<p>h</p>",
    text="t",
    configuration_set="events",
)


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        ("Throttling", "Daily message quota exceeded.", DailyQuotaExceededError),
        ("TooManyRequestsException", "Daily message quota exceeded.", DailyQuotaExceededError),
        ("Throttling", "Maximum sending rate exceeded.", ThrottledError),
        ("TooManyRequestsException", "Too many requests", ThrottledError),
    ],
)
def test_the_daily_quota_is_told_apart_from_the_send_rate(
    ses: tuple[Any, Stubber], code: str, message: str, error: type[Exception]
) -> None:
    client, stubber = ses
    stubber.add_client_error("send_email", service_error_code=code, service_message=message, http_status_code=400)
    with pytest.raises(error) as caught:
        SesEmailSender(client).send(EMAIL)
    # A daily quota is not a throttle: pacing must not cut the rate for it
    assert isinstance(caught.value, ThrottledError) == (error is ThrottledError)
    if isinstance(caught.value, DailyQuotaExceededError):
        # ...and it is an outage of the provider: its breaker opens at once.
        assert caught.value.at_once and caught.value.code == "ses_quota_exhausted" and caught.value.provider == "ses"


def test_the_daily_quota_of_ses_in_another_region_names_that_provider(ses: tuple[Any, Stubber]) -> None:
    client, stubber = ses
    stubber.add_client_error(
        "send_email", service_error_code="Throttling", service_message="Daily message quota exceeded."
    )
    with pytest.raises(DailyQuotaExceededError) as caught:
        SesEmailSender(client, label="ses-eu").send(EMAIL)
    assert caught.value.provider == "ses-eu" and caught.value.code == "ses-eu_quota_exhausted"

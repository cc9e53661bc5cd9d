"""Amazon SES v2 adapters: EmailSender (the primary, or SES in another region as a secondary) and AccountReader."""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from mailwright.adapters.aws import THROTTLING_CODES, as_transient, error_code
from mailwright.errors import DailyQuotaExceededError, ProviderOutageError, RejectedError, TransientError
from mailwright.ports import OutboundEmail, SendQuota

# SES refuses these messages for good; anything else may pass on a retry, or
# is a deployment problem (unverified MAIL FROM, missing configuration set)
# whose records are better kept in the DLQ, redrivable once it is fixed.
PERMANENT_CODES = frozenset({"MessageRejected", "BadRequestException"})
# Sending is paused for the whole account (or its configuration set): no email passes until someone acts.
ACCOUNT_PAUSED_CODES = frozenset(
    {
        "AccountSendingPausedException",
        "SendingPausedException",
        "AccountSuspendedException",
        "ConfigurationSetSendingPausedException",
    }
)
# SES reports an exhausted daily quota with the same throttling error code as the send-rate limit; only the
# message tells them apart, and only the quota is an outage (the rate limit is met by pacing and backoff).
DAILY_QUOTA_MESSAGE = "daily message quota exceeded"
# The request went out and the answer was lost (read timeout, connection closed mid-request): SES may
# have accepted the email. Connection errors (refused, DNS, connect timeout, TLS) mean it never got there.
MAYBE_SENT_ERRORS = (HTTPClientError,)


def _status(exc: ClientError) -> int:
    metadata: Any = exc.response.get("ResponseMetadata", {})
    try:
        return int(metadata.get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        return 0


def is_daily_quota(exc: ClientError) -> bool:
    """Whether SES refused the send for the 24-hour quota (not the send rate)."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) in THROTTLING_CODES and DAILY_QUOTA_MESSAGE in message.lower()


class SesEmailSender:
    """Sends through SESv2 SendEmail with simple content, custom headers and tags.

    `configuration_set` overrides the email's (SES in another region has its
    own); `label` names it in error codes. Errors that say SES is out (5xx,
    unreachable, timeouts, sending paused, daily quota used up) are raised as
    ProviderOutageError for the provider breaker; an attempt that timed out
    after the request was sent marks the error `maybe_sent`, even when
    botocore's retry then failed differently.
    """

    def __init__(self, client: Any, *, configuration_set: str | None = None, label: str = "ses") -> None:
        self._client = client
        self._configuration_set = configuration_set
        self._label = label
        self._attempts = threading.local()
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            # Called after each attempt, retried or not, on the thread that sends.
            events.register("needs-retry.sesv2.SendEmail", self._note_attempt)

    def _note_attempt(self, caught_exception: BaseException | None = None, **_: Any) -> None:
        if isinstance(caught_exception, MAYBE_SENT_ERRORS):
            self._attempts.maybe_sent = True

    def send(self, email: OutboundEmail) -> str:
        """Send one email; return SES's message id."""
        content: dict[str, Any] = {
            "Subject": {"Data": email.subject, "Charset": "UTF-8"},
            "Body": {
                "Html": {"Data": email.html, "Charset": "UTF-8"},
                "Text": {"Data": email.text, "Charset": "UTF-8"},
            },
        }
        if email.headers:
            content["Headers"] = [{"Name": name, "Value": value} for name, value in email.headers]
        self._attempts.maybe_sent = False
        try:
            response = self._client.send_email(
                FromEmailAddress=email.from_address,
                Destination={"ToAddresses": [email.to_address]},
                Content={"Simple": content},
                EmailTags=[{"Name": name, "Value": value} for name, value in email.tags],
                ConfigurationSetName=self._configuration_set or email.configuration_set,
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in PERMANENT_CODES:
                message = exc.response.get("Error", {}).get("Message", code)
                raise RejectedError("ses_rejected", f"SES refused the message: {code}: {message}") from None
            raise self._client_error(exc, code) from None
        except BotoCoreError as exc:
            raise self._transport_error(exc) from None
        return str(response["MessageId"])

    def _client_error(self, exc: ClientError, code: str) -> TransientError:
        label, maybe_sent = self._label, bool(getattr(self._attempts, "maybe_sent", False))
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if code in ACCOUNT_PAUSED_CODES:
            return ProviderOutageError(f"{label}_paused", f"{label}: {code}: {message}", at_once=True)
        if is_daily_quota(exc):
            # Pacing holds the lanes for SES's own quota; the breaker opens for any provider's.
            return DailyQuotaExceededError(f"{label}_quota_exhausted", f"{label}: {code}: {message}", provider=label)
        if _status(exc) >= 500:
            return ProviderOutageError(f"{label}_failed", f"{label}: {code}: {message}", maybe_sent=maybe_sent)
        return as_transient(exc, label)

    def _transport_error(self, exc: BotoCoreError) -> TransientError:
        label = self._label
        if isinstance(exc, BotoConnectionError) and not getattr(self._attempts, "maybe_sent", False):
            # Never connected (refused, DNS, connect timeout, TLS handshake): SES did not get the request.
            return ProviderOutageError(f"{label}_unreachable", f"{label}: {exc}")
        if isinstance(exc, (BotoConnectionError, *MAYBE_SENT_ERRORS)):
            return ProviderOutageError(f"{label}_unreachable", f"{label}: {exc}", maybe_sent=True)
        return as_transient(exc, label)


class SesAccountReader:
    """AccountReader over SESv2 GetAccount: the account's send rate and daily quota."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self) -> SendQuota:
        """The account's `SendQuota`."""
        try:
            quota = self._client.get_account()["SendQuota"]
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "ses") from None
        return SendQuota(
            max_send_rate=float(quota.get("MaxSendRate", 0.0)),
            max_24_hour_send=float(quota.get("Max24HourSend", 0.0)),
            sent_last_24_hours=float(quota.get("SentLast24Hours", 0.0)),
        )


class SesSuppressionMirror:
    """SuppressionMirror over the SES account-level suppression list (SESv2 Put/DeleteSuppressedDestination)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def put(self, address: str, reason: str) -> None:
        """Add (or re-reason) the address; `reason` is BOUNCE or COMPLAINT, the two SES knows."""
        try:
            self._client.put_suppressed_destination(EmailAddress=address, Reason=reason)
        except (ClientError, BotoCoreError) as exc:
            raise as_transient(exc, "ses") from None

    def delete(self, address: str) -> None:
        """Remove the address; one that is not on the list is already removed."""
        try:
            self._client.delete_suppressed_destination(EmailAddress=address)
        except ClientError as exc:
            if error_code(exc) != "NotFoundException":
                raise as_transient(exc, "ses") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "ses") from None

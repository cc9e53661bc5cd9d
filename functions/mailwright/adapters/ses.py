"""Amazon SES v2 adapter: EmailSender."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mailwright.adapters.aws import THROTTLING_CODES, as_transient, error_code
from mailwright.errors import DailyQuotaExceededError, RejectedError
from mailwright.ports import OutboundEmail, SendQuota

# SES refuses these messages for good; anything else may pass on a retry, or
# is a deployment problem (unverified MAIL FROM, missing configuration set)
# whose records are better kept in the DLQ, redrivable once it is fixed.
PERMANENT_CODES = frozenset({"MessageRejected", "BadRequestException"})
# SES reports the daily quota with the same throttling code as the rate: only the message tells them apart.
DAILY_QUOTA_MESSAGE = "daily message quota exceeded"


def is_daily_quota(exc: ClientError) -> bool:
    """Whether SES refused the send for the 24-hour quota (not the send rate)."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    return error_code(exc) in THROTTLING_CODES and DAILY_QUOTA_MESSAGE in message.lower()


class SesEmailSender:
    """Sends through SESv2 SendEmail with simple content, custom headers and tags."""

    def __init__(self, client: Any) -> None:
        self._client = client

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
        try:
            response = self._client.send_email(
                FromEmailAddress=email.from_address,
                Destination={"ToAddresses": [email.to_address]},
                Content={"Simple": content},
                EmailTags=[{"Name": name, "Value": value} for name, value in email.tags],
                ConfigurationSetName=email.configuration_set,
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in PERMANENT_CODES:
                message = exc.response.get("Error", {}).get("Message", code)
                raise RejectedError("ses_rejected", f"SES refused the message: {code}: {message}") from None
            if is_daily_quota(exc):
                raise DailyQuotaExceededError("daily_quota", "SES: daily message quota exceeded") from None
            raise as_transient(exc, "ses") from None
        except BotoCoreError as exc:
            raise as_transient(exc, "ses") from None
        return str(response["MessageId"])


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

"""Exceptions of the mailwright runtime.

Two families decide what happens to a record: a `RejectedError` is final (the
request is recorded as `rejected` with its reason and never retried); a
`TransientError` leaves the record on its queue to be retried with backoff.
"""

from __future__ import annotations


class MailwrightError(Exception):
    """Base class of every mailwright error."""


class RejectedError(MailwrightError):
    """The request can never succeed as written: record it as rejected, do not retry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TemplateNotFoundError(RejectedError):
    """No template (or no such version of it) exists under the requested id."""

    def __init__(self, template_id: str, version: str | None = None) -> None:
        where = f"{template_id!r} version {version!r}" if version else repr(template_id)
        super().__init__("unknown_template", f"no template {where}")
        self.template_id = template_id
        self.version = version


class TemplateRenderError(RejectedError):
    """The template failed to render with the request's data (missing variable, sandbox violation...)."""

    def __init__(self, message: str, *, code: str = "render_error") -> None:
        super().__init__(code, message)


class HeaderInjectionError(RejectedError):
    """A value that becomes an email header holds a line break."""

    def __init__(self, field: str) -> None:
        super().__init__("header_injection", f"{field} contains a line break")


class TransientError(MailwrightError):
    """A dependency failed in a way that may pass (throttling, 5xx, timeouts): retry the record later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ThrottledError(TransientError):
    """A service said to slow down."""


class ProviderOutageError(TransientError):
    """An email provider failed in a way that blames the provider, not the message: it counts toward its breaker.

    `at_once`: an account-level refusal (sending paused, daily quota used up, a
    key the provider no longer accepts) that opens the breaker without waiting
    for more failures. `maybe_sent`: the request reached the provider and its
    answer was lost (a read timeout), so it may have been accepted: it must not
    be sent again through another provider.
    """

    def __init__(self, code: str, message: str, *, at_once: bool = False, maybe_sent: bool = False) -> None:
        super().__init__(code, message)
        self.at_once = at_once
        self.maybe_sent = maybe_sent


class ProviderUnavailableError(TransientError):
    """The lane's provider is out (its breaker is open) and the lane may not fail over: the mail waits."""

    def __init__(self, message: str) -> None:
        super().__init__("provider_unavailable", message)


class ProviderPacedError(TransientError):
    """A secondary provider's own send rate is used up for now: the email waits (not a failure)."""


class DailyQuotaExceededError(ProviderOutageError):
    """A provider refused a send because its account's 24-hour quota is used up (not a rate problem).

    An outage at once for the provider breaker; for SES (`provider` "ses") pacing also holds every lane
    until SES reports room, without slowing the rate.
    """

    def __init__(self, code: str, message: str, *, provider: str = "ses") -> None:
        super().__init__(code, message, at_once=True)
        self.provider = provider


class ConfigurationError(MailwrightError):
    """The function's environment is missing a setting or holds a bad one."""


class TemplateFormatError(MailwrightError):
    """A template directory or bundle is malformed (found when bundling or validating, not at send time)."""


class SuppressionError(MailwrightError):
    """A suppression change was refused (bad reason, no actor...)."""


class NotSuppressedError(SuppressionError):
    """The address has no active suppression to remove."""

    def __init__(self, masked: str) -> None:
        super().__init__(f"{masked} is not suppressed")
        self.masked = masked


class ComplaintRemovalError(SuppressionError):
    """The address complained: lifting its suppression needs an explicit force flag."""

    def __init__(self, masked: str) -> None:
        super().__init__(f"{masked} is suppressed after a complaint; removing it needs force")
        self.masked = masked


class FeedbackFormatError(MailwrightError):
    """A feedback message is not an SES event this service can read (it is failed, so it reaches the DLQ)."""


class BreakerEventError(MailwrightError):
    """An event given to the circuit breaker is not a CloudWatch alarm state change it can read."""


class WebhookAuthError(MailwrightError):
    """A provider webhook request is unsigned (`status` 401), or its signature is forged or stale (403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class IngestEventError(MailwrightError):
    """An event given to the ingest bridge is neither a Kafka nor a RabbitMQ event as Lambda delivers them."""


class IngestDeliveryError(TransientError):
    """The bridge could not put every valid record on a lane queue (or record every rejection): retry the batch."""

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


class DailyQuotaExceededError(TransientError):
    """SES refused a send because the account's 24-hour quota is used up (not a rate problem)."""


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

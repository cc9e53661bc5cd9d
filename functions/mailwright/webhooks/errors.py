"""Exceptions of the webhook sender; names end in Error."""

from __future__ import annotations

from mailwright.errors import MailwrightError


class WebhookError(MailwrightError):
    """Base class of the webhook sender's errors."""


class WebhookSecretError(WebhookError):
    """An endpoint's signing secret is missing or not in `whsec_<base64>` form."""


class ForbiddenTargetError(WebhookError):
    """An endpoint URL that may not be called: not https, or it resolves to a private, loopback or link-local address.

    `code` says which (`not_https`, `bad_url`, `unresolvable`, `private_address`).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TransportError(WebhookError):
    """An attempt got no HTTP answer: `code` is timeout, connection_refused, tls_error, bad_response..."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code

"""SendGrid adapter: EmailSender over the v3 Mail Send API (`POST /v3/mail/send`).

One personalization per email; the request id, lane, category and template
travel as `custom_args`, which SendGrid copies into every Event Webhook event
of the message, so its feedback finds the request. SendGrid answers 202 with
the message id in the `X-Message-Id` header (events carry it as the first
part of `sg_message_id`). SendGrid's own subscription tracking is turned off:
the email already carries mailwright's List-Unsubscribe headers and links.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any

from mailwright.adapters.http import ProviderApi, read_secret
from mailwright.ports import OutboundEmail
from mailwright.settings import SendGridSettings

logger = logging.getLogger(__name__)

MAIL_SEND_PATH = "/v3/mail/send"
# The tags copied into custom_args (producer metadata stays out: SendGrid keeps custom_args as non-PII).
CUSTOM_ARG_TAGS = ("request_id", "lane", "category", "template")


def _address(value: str) -> dict[str, str]:
    name, address = parseaddr(value)
    return {"email": address or value, **({"name": name} if name else {})}


def mail_send_body(email: OutboundEmail) -> dict[str, Any]:
    """The Mail Send request body of `email`."""
    tags = dict(email.tags)
    custom_args = {tag: tags[tag] for tag in CUSTOM_ARG_TAGS if tags.get(tag)}
    body: dict[str, Any] = {
        "personalizations": [{"to": [_address(email.to_address)], "custom_args": custom_args}],
        "from": _address(email.from_address),
        "subject": email.subject,
        # SendGrid wants text/plain first, then text/html.
        "content": [{"type": "text/plain", "value": email.text}, {"type": "text/html", "value": email.html}],
        "tracking_settings": {"subscription_tracking": {"enable": False}},
    }
    headers = dict(email.headers)
    if tags.get("request_id"):
        headers["X-Mailwright-Request-Id"] = tags["request_id"]
    if headers:
        body["headers"] = headers
    if tags.get("category"):
        body["categories"] = [tags["category"]]
    return body


class SendGridEmailSender:
    """Sends through SendGrid's v3 Mail Send API with the API key from the provider's secret."""

    def __init__(
        self,
        settings: SendGridSettings,
        api_key: Callable[[], str],
        *,
        name: str = "sendgrid",
        api: ProviderApi | None = None,
    ) -> None:
        self.name = name
        self._api_key = api_key
        self._api = api or ProviderApi(settings.base_url, name=name, timeout_seconds=settings.timeout_seconds)

    def send(self, email: OutboundEmail) -> str:
        """Send one email; return SendGrid's message id (the X-Message-Id header)."""
        key = read_secret(self.name, self._api_key)
        response = self._api.post(
            MAIL_SEND_PATH,
            body=json.dumps(mail_send_body(email)).encode("utf-8"),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            # Accepted all the same (2xx): sending it again would duplicate it. Its feedback still finds the
            # request through custom_args; only a lookup by message id will not.
            logger.warning("SendGrid accepted an email without X-Message-Id", extra={"provider": self.name})
            return ""
        return str(message_id)

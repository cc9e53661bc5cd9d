"""Mailgun adapter: EmailSender over the messages API (`POST /v3/<domain>/messages`).

Form fields as Mailgun documents them: `from`, `to`, `subject`, `text`,
`html`, a `h:<Header>` per header, a `v:<name>` per variable (the request
id, lane, category and template, which Mailgun copies into every webhook
event as `user-variables`) and `o:tag` (the category). Basic auth as
`api:<key>`. Mailgun answers `{"id": "<...>", "message": "Queued. Thank you."}`;
the id (without angle brackets) is the message id its events carry.
The EU region has its own base URL (settings `region: eu`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from urllib.parse import quote

from urllib3 import encode_multipart_formdata

from mailwright.adapters.http import ProviderApi, read_secret
from mailwright.errors import ProviderOutageError
from mailwright.ports import OutboundEmail
from mailwright.settings import MailgunSettings

VARIABLE_TAGS = ("request_id", "lane", "category", "template")


def message_fields(email: OutboundEmail) -> list[tuple[str, str]]:
    """The form fields of `email` for the messages API."""
    tags = dict(email.tags)
    fields = [
        ("from", email.from_address),
        ("to", email.to_address),
        ("subject", email.subject),
        ("text", email.text),
        ("html", email.html),
    ]
    fields += [(f"h:{name}", value) for name, value in email.headers]
    if tags.get("request_id"):
        fields.append(("h:X-Mailwright-Request-Id", tags["request_id"]))
    fields += [(f"v:{tag}", tags[tag]) for tag in VARIABLE_TAGS if tags.get(tag)]
    if tags.get("category"):
        fields.append(("o:tag", tags["category"]))
    return fields


class MailgunEmailSender:
    """Sends through Mailgun's messages API for one sending domain, with the API key from the provider's secret."""

    def __init__(
        self,
        settings: MailgunSettings,
        api_key: Callable[[], str],
        *,
        name: str = "mailgun",
        api: ProviderApi | None = None,
    ) -> None:
        self.name = name
        self._path = f"/v3/{quote(settings.domain, safe='')}/messages"
        self._api_key = api_key
        self._api = api or ProviderApi(settings.base_url, name=name, timeout_seconds=settings.timeout_seconds)

    def send(self, email: OutboundEmail) -> str:
        """Send one email; return Mailgun's message id (without angle brackets)."""
        key = read_secret(self.name, self._api_key)
        body, content_type = encode_multipart_formdata(message_fields(email))
        credentials = base64.b64encode(f"api:{key}".encode()).decode("ascii")
        response = self._api.post(
            self._path, body=body, headers={"Authorization": f"Basic {credentials}", "Content-Type": content_type}
        )
        try:
            answer = json.loads(response.data)
            message_id = answer["id"]
        except (ValueError, KeyError, TypeError):
            # A 200 that is not the messages API's answer: the base URL or domain points somewhere else.
            raise ProviderOutageError(
                f"{self.name}_bad_answer", f"{self.name}: the answer is not a queued message", at_once=True
            ) from None
        return str(message_id).strip("<>")

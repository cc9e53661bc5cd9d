"""The local stack's secondary provider: a real SMTP server (aiosmtpd) on loopback, configured like a deployed relay.

`mailwright local up` (and the demo) starts it unless `--no-secondary` says
not to. The workers reach it through the SMTP relay adapter exactly as they
would reach Postmark's or an in-house Postfix: the provider is a `providers`
entry of kind `smtp` (`local_relay_provider`), parsed by infra.config as a
context value, its credentials in (moto's) Secrets Manager, and the worker
logs in with them (AUTH PLAIN/LOGIN; loopback needs no TLS, which the
settings allow for loopback hosts only).

Mail it receives lands in the outbox like SES mail, as received, with an
`X-Mailwright-Provider` header naming the provider (SES mail carries `ses`).
An SMTP relay sends no feedback, here as deployed: no delivery or bounce
events for its mail.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from infra.config import ProviderConfig, parse_providers
from mailwright_tools.local.outbox import Outbox

logger = logging.getLogger(__name__)
_AIOSMTPD_LOG = logging.getLogger("mail.log")

# The provider's name: the outbox header, the message log's `provider`, the metrics' dimension.
LOCAL_RELAY_NAME = "local-relay"
LOCAL_RELAY_USER = "mailwright-local"
PROVIDER_HEADER = "X-Mailwright-Provider"
# Emails per second the local relay takes, split among the workers that fail over to it (as deployed).
LOCAL_RELAY_SEND_RATE = 50.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def local_relay_provider(*, host: str, port: int, secret_arn: str, name: str = LOCAL_RELAY_NAME) -> ProviderConfig:
    """The `providers` entry of the local relay, read through the context's own parser."""
    (provider,) = parse_providers(
        [
            {
                "name": name,
                "kind": "smtp",
                "secret": secret_arn,
                "max_send_rate": LOCAL_RELAY_SEND_RATE,
                "settings": {"host": host, "port": port, "tls": "none", "timeout_seconds": 5},
            }
        ]
    )
    return provider


class _Handler:
    """Files each message the relay accepts into the outbox, with the provider's header."""

    def __init__(self, relay: LocalRelay) -> None:
        self._relay = relay

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or b""
        try:
            self._relay.received(content)
        except Exception:
            logger.exception("the local relay could not file a message")
            # A 4xx: the worker keeps the email and tries again later, as it would with a relay in trouble.
            return "451 4.3.0 local relay could not store the message"
        return "250 2.0.0 queued by the local relay"


class LocalRelay:
    """An SMTP server on loopback (`host`, `port`) that checks the credentials it was given and files mail in `outbox`.

    The credentials are random per start; `credentials` is what the provider's secret holds.
    """

    def __init__(self, outbox: Outbox, *, name: str = LOCAL_RELAY_NAME, host: str = "127.0.0.1") -> None:
        self.outbox = outbox
        self.name = name
        self.host = host
        self.port = free_port(host)
        self.credentials = {"username": LOCAL_RELAY_USER, "password": secrets.token_urlsafe(24)}
        self._lock = threading.Lock()
        self.received_by_lane: Counter[str] = Counter()
        self._aiosmtpd_level = logging.NOTSET
        self.controller = Controller(
            _Handler(self),
            hostname=host,
            port=self.port,
            authenticator=self._authenticate,
            # Loopback only: AUTH is checked when offered, and the adapter always offers it when its secret
            # names a user. (Demanding AUTH without TLS makes aiosmtpd warn, rightly, for anything but loopback.)
            auth_require_tls=False,
            auth_required=False,
            timeout=60,
        )

    def start(self) -> None:
        """Start listening."""
        # aiosmtpd logs a deprecation of its own at every AUTH: not the stack's terminal's business.
        self._aiosmtpd_level = _AIOSMTPD_LOG.level
        _AIOSMTPD_LOG.setLevel(logging.ERROR)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self.controller.stop()
        _AIOSMTPD_LOG.setLevel(self._aiosmtpd_level)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        expected = self.credentials
        ok = (
            isinstance(data, LoginPassword)
            and data.login == expected["username"].encode()
            and secrets.compare_digest(data.password, expected["password"].encode())
        )
        return AuthResult(success=ok, handled=False)

    def received(self, content: bytes) -> None:
        """File one message as received, with the provider's header (replacing one a sender may have set)."""
        message = message_from_bytes(content, policy=policy.SMTP)
        assert isinstance(message, EmailMessage)
        del message[PROVIDER_HEADER]
        message[PROVIDER_HEADER] = self.name
        entry = self.outbox.add_received(message, provider=self.name, sent_at=time.time())
        with self._lock:
            self.received_by_lane[entry.lane] += 1

    @property
    def received_count(self) -> int:
        """How many messages the relay took."""
        with self._lock:
            return sum(self.received_by_lane.values())

"""SMTP relay adapter: EmailSender over any relay (SendGrid's, Mailgun's, Postmark's, an in-house Postfix).

The relay gets the message SES would send: text and HTML alternatives, the
List-Unsubscribe headers, and `X-Mailwright-*` headers naming the request,
lane, category and template. The provider's message id is the Message-ID
header generated here.

Connections are kept open between sends and shared by the send stage's
threads through a small pool (one thread per connection at a time). A pooled
connection idle for a while is checked with NOOP before use; one that turns
out closed before the message was handed over is replaced and the send
retried once. Replies: 5xx refuses the message for good (RejectedError),
except a refused login (the relay's outage: the credentials will not heal by
retrying); 4xx and connection errors may pass later (TransientError; those
that blame the relay are ProviderOutageError). A connection lost after the
message was handed over may have delivered it (`maybe_sent`).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate, make_msgid, parseaddr

from mailwright.adapters.http import read_secret
from mailwright.errors import ProviderOutageError, RejectedError, TransientError
from mailwright.ports import OutboundEmail
from mailwright.settings import SmtpSettings

# Tags that become X-Mailwright-* headers (producer metadata stays out of what the recipient can read).
HEADER_TAGS = {"request_id": "Request-Id", "lane": "Lane", "category": "Category", "template": "Template"}
# Replies that say the relay itself is in trouble, not the message: 421 closing, 454 TLS unavailable.
OUTAGE_REPLIES = frozenset({421, 454})
# A pooled connection idle this long is checked with NOOP before it carries a message.
IDLE_CHECK_SECONDS = 10.0


@dataclass(frozen=True)
class SmtpCredentials:
    """The relay's AUTH username and password (from the provider's secret)."""

    username: str
    password: str


def build_message(email: OutboundEmail, *, message_id: str) -> EmailMessage:
    """The MIME message of `email`: multipart/alternative text + HTML, its headers and the X-Mailwright-* ones."""
    message = EmailMessage(policy=SMTP)
    message["From"] = email.from_address
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    for name, value in email.headers:
        message[name] = value
    tags = dict(email.tags)
    for tag, header in HEADER_TAGS.items():
        if tags.get(tag):
            message[f"X-Mailwright-{header}"] = tags[tag]
    message.set_content(email.text, subtype="plain", charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


class _Connection:
    """One open SMTP session and when it was last used."""

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.used_at = time.monotonic()

    def close(self) -> None:
        try:
            self.smtp.quit()
        except (smtplib.SMTPException, OSError):
            self.smtp.close()


class SmtpEmailSender:
    """EmailSender over an SMTP relay, with up to `settings.pool_size` connections reused across sends."""

    def __init__(
        self,
        settings: SmtpSettings,
        credentials: Callable[[], SmtpCredentials | None],
        *,
        name: str = "smtp",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self.name = name
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._slots = threading.BoundedSemaphore(settings.pool_size)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self.connections_opened = 0

    def send(self, email: OutboundEmail) -> str:
        """Send one email through the relay; return the Message-ID generated for it (without angle brackets)."""
        sender = parseaddr(email.from_address)[1] or email.from_address
        message_id = make_msgid(domain=_domain(sender))
        message = build_message(email, message_id=message_id)
        if not self._slots.acquire(timeout=self._settings.timeout_seconds):
            raise TransientError(f"{self.name}_busy", f"{self.name}: no SMTP connection free in time")
        try:
            for attempt in range(2):
                connection = self._borrow(sender, fresh=attempt > 0)
                try:
                    self._transact(connection.smtp, sender, email.to_address, message)
                except _StaleConnectionError:
                    connection.close()
                    if attempt:
                        raise ProviderOutageError(
                            f"{self.name}_unreachable", f"{self.name}: the relay closed the connection"
                        ) from None
                    continue
                except (RejectedError, TransientError) as exc:
                    # A refusal leaves a usable session (reset already); a failure of the relay does not.
                    if isinstance(exc, ProviderOutageError):
                        connection.close()
                    else:
                        self._keep(connection)
                    raise
                except BaseException:
                    connection.close()
                    raise
                self._keep(connection)
                return message_id.strip("<>")
        finally:
            self._slots.release()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close every idle connection (QUIT)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # -- connections ------------------------------------------------------------

    def _keep(self, connection: _Connection) -> None:
        connection.used_at = time.monotonic()
        with self._lock:
            self._idle.append(connection)

    def _borrow(self, sender: str, *, fresh: bool) -> _Connection:
        while not fresh:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                break
            if time.monotonic() - connection.used_at < IDLE_CHECK_SECONDS or self._alive(connection):
                return connection
            connection.close()
        return _Connection(self._connect(_domain(sender)))

    @staticmethod
    def _alive(connection: _Connection) -> bool:
        try:
            return connection.smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def _connect(self, helo_domain: str) -> smtplib.SMTP:
        settings, name = self._settings, self.name
        try:
            # local_hostname: without it smtplib looks up this machine's FQDN, which can hang in Lambda.
            smtp: smtplib.SMTP
            if settings.tls == "tls":
                smtp = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    local_hostname=helo_domain,
                    timeout=settings.timeout_seconds,
                    context=self._ssl_context,
                )
            else:
                smtp = smtplib.SMTP(
                    settings.host, settings.port, local_hostname=helo_domain, timeout=settings.timeout_seconds
                )
            smtp.ehlo()
            if settings.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise ProviderOutageError(f"{name}_tls", f"{name}: the relay does not offer STARTTLS", at_once=True)
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo()
        except (smtplib.SMTPException, OSError) as exc:
            raise ProviderOutageError(f"{name}_unreachable", f"{name}: cannot connect: {exc}") from None
        self._login(smtp)
        self.connections_opened += 1
        return smtp

    def _login(self, smtp: smtplib.SMTP) -> None:
        name = self.name
        try:
            credentials = read_secret(name, self._credentials)
        except TransientError:
            smtp.close()
            raise
        if credentials is None:
            return
        try:
            smtp.login(credentials.username, credentials.password)
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            # The relay refuses our credentials: every email would fail alike until someone fixes the secret.
            refused = f"{name}: login refused ({exc.smtp_code})"
            raise ProviderOutageError(f"{name}_auth_failed", refused, at_once=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise ProviderOutageError(f"{name}_unreachable", f"{name}: login failed: {exc}") from None

    # -- one mail transaction -----------------------------------------------------

    def _transact(self, smtp: smtplib.SMTP, sender: str, recipient: str, message: EmailMessage) -> None:
        international = not (sender.isascii() and recipient.isascii())
        options: list[str] = []
        if international:
            if not smtp.has_extn("smtputf8"):
                raise RejectedError("smtp_rejected", "the address needs SMTPUTF8, which the relay does not offer")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        try:
            code, reply = smtp.mail(sender, options)
            if code == 421:  # the relay is closing this session (an idle timeout): a new one may carry it
                raise _StaleConnectionError
            if code == 250:
                code, reply = smtp.rcpt(recipient)
        except (smtplib.SMTPServerDisconnected, OSError):
            raise _StaleConnectionError from None
        if code not in (250, 251):
            self._reset(smtp)
            self._check(code, reply, "MAIL FROM/RCPT TO")
        payload = message.as_bytes(policy=SMTPUTF8 if international else SMTP)
        try:
            code, reply = smtp.data(payload)
        except smtplib.SMTPDataError as exc:
            self._reset(smtp)
            self._check(exc.smtp_code, exc.smtp_error, "DATA")
            raise  # pragma: no cover - _check raised for every non-2xx code
        except (smtplib.SMTPException, OSError) as exc:
            # The message may have been handed over before the connection failed: the relay may deliver it.
            raise ProviderOutageError(
                f"{self.name}_unreachable", f"{self.name}: connection lost during DATA: {exc}", maybe_sent=True
            ) from None
        self._check(code, reply, "DATA")

    def _check(self, code: int, reply: bytes | str, command: str) -> None:
        if 200 <= code < 400:
            return
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        what = f"{self.name}: {command} answered {code} {text[:200]}"
        if code in OUTAGE_REPLIES:
            raise ProviderOutageError(f"{self.name}_unavailable", what)
        if 400 <= code < 500:
            raise TransientError(f"{self.name}_deferred", what)
        raise RejectedError("smtp_rejected", what)

    @staticmethod
    def _reset(smtp: smtplib.SMTP) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.rset()


class _StaleConnectionError(Exception):
    """The connection closed before the message was handed over: a fresh one may carry it."""

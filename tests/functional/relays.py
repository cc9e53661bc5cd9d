"""Real servers on loopback for the provider adapters: an SMTP relay (aiosmtpd) and a TLS certificate for it."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USERNAME, PASSWORD = "mailwright", "relay-password-for-tests"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for localhost / 127.0.0.1, its key, and the contexts that use it."""

    cert_file: Path
    key_file: Path

    @classmethod
    def create(cls, directory: Path) -> Certificate:
        """Generate a P-256 key and a certificate valid for a day, written as PEM files in `directory`."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file, key_file = directory / "relay.crt", directory / "relay.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cls(cert_file, key_file)

    def server_context(self) -> ssl.SSLContext:
        """What the relay presents."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and verifies the host name, as the default does)."""
        return ssl.create_default_context(cafile=str(self.cert_file))


@dataclass
class RelayHandler:
    """What the relay does with each transaction: scripted refusals, a count of sessions, the mail it took."""

    messages: list[Envelope] = field(default_factory=list)
    sessions: int = 0
    drop_during_data: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        with self._lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 <refused> mailbox unavailable"
        if address.endswith("@busy.example"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.drop_during_data:
            assert server.transport is not None
            server.transport.close()
            return "250 never heard"
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        if b"Subject: spam" in content:
            return "554 5.7.1 message refused as spam"
        with self._lock:
            self.messages.append(envelope)
        return "250 2.0.0 queued"

    def parsed(self) -> list[EmailMessage]:
        """The messages taken, parsed."""
        with self._lock:
            contents = [e.original_content or b"" for e in self.messages]
        return [message_from_bytes(content, policy=policy.default) for content in contents]  # type: ignore[misc]


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == USERNAME.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


class Relay:
    """An aiosmtpd relay on 127.0.0.1: plain, STARTTLS (required, with AUTH) or implicit TLS (with AUTH)."""

    def __init__(self, mode: str, certificate: Certificate | None = None, *, timeout: float = 300) -> None:
        self.mode = mode
        self.port = free_port()
        self.handler = RelayHandler()
        kwargs: dict[str, Any] = {"timeout": timeout}
        if mode in ("starttls", "tls"):
            assert certificate is not None
            kwargs.update(authenticator=_authenticator, auth_required=True)
        if mode == "starttls":
            kwargs.update(tls_context=certificate.server_context(), require_starttls=True)  # type: ignore[union-attr]
        elif mode == "tls":
            # aiosmtpd only knows of TLS it negotiated itself (STARTTLS): the whole session is TLS here, and
            # AUTH is offered (and checked) but not demanded, which aiosmtpd only allows without TLS demands.
            kwargs.update(ssl_context=certificate.server_context(), auth_require_tls=False, auth_required=False)  # type: ignore[union-attr]
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> Relay:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()

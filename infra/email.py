"""Amazon SES: the configuration set, the identity the workers send as, and the DNS records it needs."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_ses as ses
from constructs import Construct

from mailwright.constants import Outputs

# SES's own SPF record, which the MAIL FROM domain includes.
SPF_RECORD = "v=spf1 include:amazonses.com ~all"
MAIL_FROM_MX_PRIORITY = 10


class EmailSending(Construct):
    """The configuration set and identity, with the ARNs `ses:SendEmail` is granted on.

    With a domain, the identity signs with Easy DKIM and uses a custom MAIL FROM
    domain; `dns_records` are the records to publish for both, plus a DMARC record.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain: str,
        sender: str,
        mail_from_domain: str = "",
        sandbox_recipients: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.configuration_set = ses.ConfigurationSet(
            self,
            "ConfigurationSet",
            # Bounce and complaint rates per configuration set, beside the account's.
            reputation_metrics=True,
            sending_enabled=True,
            # Password resets and receipts never travel in clear text.
            tls_policy=ses.ConfigurationSetTlsPolicy.REQUIRE,
        )
        # A domain identity (Easy DKIM) covers every address in it; without a
        # domain, only the sender address itself is verified.
        identity = ses.Identity.domain(domain) if domain else ses.Identity.email(sender)
        self.identity_name = domain or sender
        self.domain = domain
        self.mail_from_domain = mail_from_domain if domain else ""
        self.identity = ses.EmailIdentity(
            self,
            "Identity",
            identity=identity,
            configuration_set=self.configuration_set,
            # Bounces return to (and SPF is checked on) a subdomain of ours, so SPF aligns for DMARC.
            mail_from_domain=self.mail_from_domain or None,
            # Until its MX record is published (or if it breaks), mail still goes out with SES's own
            # MAIL FROM domain instead of being refused: a password reset matters more than alignment.
            mail_from_behavior_on_mx_failure=ses.MailFromBehaviorOnMxFailure.USE_DEFAULT_VALUE
            if self.mail_from_domain
            else None,
        )
        stack = Stack.of(self)
        self.identity_arn = stack.format_arn(service="ses", resource="identity", resource_name=self.identity_name)
        self.configuration_set_arn = stack.format_arn(
            service="ses",
            resource="configuration-set",
            resource_name=self.configuration_set.configuration_set_name,
        )
        # In the SES sandbox, SendEmail is authorised against each recipient's identity as well.
        self.sandbox_recipient_arns = [
            stack.format_arn(service="ses", resource="identity", resource_name=recipient)
            for recipient in sandbox_recipients
        ]

    def send_email_resources(self) -> list[str]:
        """What `ses:SendEmail` is granted on: the identity, the configuration set, sandbox recipients."""
        return [self.identity_arn, self.configuration_set_arn, *self.sandbox_recipient_arns]

    def dns_records(self) -> dict[str, str]:
        """The DNS records to publish, by output key, as zone-file lines (empty without a domain)."""
        if not self.domain:
            return {}
        region = Stack.of(self).region
        records = {
            Outputs.dkim_record(number): f"{record.name} CNAME {record.value}"
            for number, record in enumerate(self.identity.dkim_records, start=1)
        }
        records[Outputs.MAIL_FROM_MX_RECORD] = (
            f"{self.mail_from_domain} MX {MAIL_FROM_MX_PRIORITY} feedback-smtp.{region}.amazonses.com"
        )
        records[Outputs.MAIL_FROM_SPF_RECORD] = f'{self.mail_from_domain} TXT "{SPF_RECORD}"'
        records[Outputs.DMARC_RECORD] = (
            f'_dmarc.{self.domain} TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@{self.domain}"'
        )
        return records

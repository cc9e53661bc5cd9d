"""Amazon SES: the configuration set and the identity the workers send as."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ses as ses
from constructs import Construct


class EmailSending(Construct):
    """The configuration set and identity, with the ARNs `ses:SendEmail` is granted on."""

    def __init__(self, scope: Construct, construct_id: str, *, domain: str, sender: str) -> None:
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
        self.identity = ses.EmailIdentity(
            self,
            "Identity",
            identity=identity,
            configuration_set=self.configuration_set,
        )
        stack = Stack.of(self)
        self.identity_arn = stack.format_arn(service="ses", resource="identity", resource_name=self.identity_name)
        self.configuration_set_arn = stack.format_arn(
            service="ses",
            resource="configuration-set",
            resource_name=self.configuration_set.configuration_set_name,
        )

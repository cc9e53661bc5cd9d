"""Secondary providers: their secrets (looked up, never created), the provider webhook, a second SES region.

With no `providers` in context none of this is built and the stack is exactly
as without the feature. With them:

* `ProviderSecrets` finds each provider's secret by the name or complete ARN
  the context gives. The user creates the secrets (README: Secondary providers
  and failover): credentials never pass through CloudFormation, outlive the
  stack (a destroy and a redeploy keep them) and are rotated by their owner.
  A stack-made placeholder would have put a dummy credential in front of the
  first real outage instead.
* `ProviderWebhook` is the public function URL SendGrid and Mailgun post their
  signed events to (only when one of them is configured): auth NONE, the
  signature is the authorisation, behind a reserved-concurrency cap.
* `subscribe_region_feedback` routes the SNS topic of SES's configuration set
  in another region to the feedback queue, so its bounces and complaints go
  through the same suppression lifecycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import ProviderConfig
from infra.functions import python_function
from mailwright.constants import PROVIDER_KIND_SES, PROVIDER_WEBHOOK_HANDLER

# Enough for a provider's batch (SendGrid posts up to a few hundred events at once), each a few writes.
WEBHOOK_TIMEOUT_SECONDS = 30
WEBHOOK_MEMORY_MB = 256


def _secret(scope: Construct, construct_id: str, reference: str) -> secretsmanager.ISecret:
    """A secret by its complete ARN, or by its name (IAM then allows the `-??????` suffix Secrets Manager adds)."""
    if reference.startswith("arn:"):
        return secretsmanager.Secret.from_secret_complete_arn(scope, construct_id, reference)
    return secretsmanager.Secret.from_secret_name_v2(scope, construct_id, reference)


class ProviderSecrets(Construct):
    """The secondaries' secrets by provider name (`secrets`), and where each webhook's key is (`webhook_secrets`)."""

    def __init__(self, scope: Construct, construct_id: str, *, providers: Sequence[ProviderConfig]) -> None:
        super().__init__(scope, construct_id)
        self.secrets: dict[str, secretsmanager.ISecret] = {}
        self.webhook_secrets: dict[str, secretsmanager.ISecret] = {}
        for provider in providers:
            if provider.secret:
                self.secrets[provider.name] = _secret(self, f"{provider.name}-secret", provider.secret)
            if provider.posts_webhooks:
                self.webhook_secrets[provider.name] = (
                    _secret(self, f"{provider.name}-webhook-secret", provider.webhook_secret)
                    if provider.webhook_secret
                    else self.secrets[provider.name]
                )

    def arns(self) -> dict[str, str]:
        """Each provider's secret ARN (a partial ARN for a secret named by its name), by provider name."""
        return {name: secret.secret_arn for name, secret in self.secrets.items()}

    def webhook_arns(self) -> dict[str, str]:
        """The ARN of the secret each webhook provider's verification key is read from, by provider name."""
        return {name: secret.secret_arn for name, secret in self.webhook_secrets.items()}


class ProviderWebhook(Construct):
    """SendGrid's and Mailgun's signed feedback: a function (`function`) behind a public URL (`url`).

    Each provider posts to `<url><provider name>`. The stack grants it the verification keys' secrets,
    the suppression, messages and preferences tables, and the replay guard's items of the idempotency table.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        reserved_concurrency: int | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Function",
            log_group_id="Logs",
            description="mailwright provider webhook: signed SendGrid and Mailgun events to suppressions and the log",
            code=code,
            handler=PROVIDER_WEBHOOK_HANDLER,
            timeout=Duration.seconds(WEBHOOK_TIMEOUT_SECONDS),
            memory_mb=WEBHOOK_MEMORY_MB,
            environment=environment,
            # Anyone can reach it: a flood of forged posts must not take the concurrency the workers, the
            # feedback function and the breakers share. Beyond the cap, callers get HTTP 429 (the providers
            # retry), and the throttles-provider-webhook alarm fires.
            reserved_concurrency=reserved_concurrency,
        )
        self.url = self.function.add_function_url(
            # Public on purpose: SendGrid and Mailgun call it without AWS credentials. Each request's signature
            # (SendGrid's ECDSA, Mailgun's HMAC) is the authorisation; unsigned or forged requests get 401/403
            # and change nothing. No CORS: no browser calls it.
            auth_type=lambda_.FunctionUrlAuthType.NONE,
        )


def region_feedback_topics(scope: Construct, providers: Sequence[ProviderConfig]) -> dict[str, sns.ITopic]:
    """The SNS topic of each second SES region that names one (`feedback_topic_arn`), by provider name."""
    return {
        provider.name: sns.Topic.from_topic_arn(
            scope, f"{provider.name}-feedback-topic", str(provider.settings["feedback_topic_arn"])
        )
        for provider in providers
        if provider.kind == PROVIDER_KIND_SES and provider.settings.get("feedback_topic_arn")
    }


def subscribe_region_feedback(topics: Mapping[str, sns.ITopic], queue: sqs.IQueue) -> None:
    """Subscribe the feedback queue to each other region's SES event topic (a cross-region subscription).

    The subscription lives in the topic's region. It has no dead-letter queue: SNS wants one in the
    subscription's region, and a message SNS cannot deliver here is retried by SNS for days first.
    The queue's policy lets exactly those topics send to it.
    """
    for topic in topics.values():
        topic.add_subscription(subscriptions.SqsSubscription(queue, raw_message_delivery=False))


def other_region_send_resources(scope: Construct, provider: ProviderConfig, *, identity: str) -> list[str]:
    """What `ses:SendEmail` is granted on in another region: the same identity there, and its configuration set."""
    stack = Stack.of(scope)
    region = provider.region
    return [
        stack.format_arn(service="ses", region=region, resource="identity", resource_name=identity),
        stack.format_arn(
            service="ses",
            region=region,
            resource="configuration-set",
            resource_name=str(provider.settings["configuration_set"]),
        ),
    ]

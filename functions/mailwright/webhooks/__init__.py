"""Webhooks: outcome events POSTed to producers' endpoints, signed per Standard Webhooks, retried from SQS.

`service` holds the sender's policy (retries, suspension, archive),
`signing` the signatures, `transport` the guarded HTTP attempt, `ports` what
the sender speaks to; the boto3 adapters are in `mailwright.adapters.webhooks`.
"""

from mailwright.webhooks.errors import ForbiddenTargetError, TransportError, WebhookError, WebhookSecretError
from mailwright.webhooks.ports import STATE_ACTIVE, STATE_SUSPENDED, EndpointState, archive_key
from mailwright.webhooks.service import WEBHOOK_TEST_TYPE, Delivery, WebhookReport, WebhookService
from mailwright.webhooks.signing import Signer, decode_secret, new_secret, secret_document

__all__ = [
    "STATE_ACTIVE",
    "STATE_SUSPENDED",
    "WEBHOOK_TEST_TYPE",
    "Delivery",
    "EndpointState",
    "ForbiddenTargetError",
    "Signer",
    "TransportError",
    "WebhookError",
    "WebhookReport",
    "WebhookSecretError",
    "WebhookService",
    "archive_key",
    "decode_secret",
    "new_secret",
    "secret_document",
]

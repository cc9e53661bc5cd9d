"""Names shared by the runtime, the CDK app and the local tooling.

This module imports nothing, so `infra/` and the CLI may import it without
pulling in the runtime.
"""

from __future__ import annotations

# Lanes, in order of urgency. Each lane is one SQS queue (+ DLQ) and one worker.
LANES: tuple[str, ...] = ("critical", "standard", "bulk")
DEFAULT_LANE = "standard"

# Template categories. Mail in an essential category is sent even to users who
# unsubscribed from everything and carries no List-Unsubscribe header.
CATEGORIES: tuple[str, ...] = ("security", "transactional", "product", "marketing")
ESSENTIAL_CATEGORIES: frozenset[str] = frozenset({"security", "transactional"})

# Terminal states of a request, as recorded in the message log. A `rejected` request that is
# published or delivered again is evaluated again; the others are final for the dedupe window.
STATUS_SENT = "sent"
STATUS_SUPPRESSED = "suppressed"
STATUS_OPTED_OUT = "opted_out"
STATUS_RATE_LIMITED = "rate_limited"
STATUS_REJECTED = "rejected"
TERMINAL_STATUSES: tuple[str, ...] = (
    STATUS_SENT,
    STATUS_SUPPRESSED,
    STATUS_OPTED_OUT,
    STATUS_RATE_LIMITED,
    STATUS_REJECTED,
)

# A deferred record is enqueued again as a new message carrying these SQS message attributes: how many
# times it was deferred, when its producer first published it (epoch seconds), and why it was deferred.
DEFERRALS_ATTRIBUTE = "mailwright-deferrals"
PUBLISHED_AT_ATTRIBUTE = "mailwright-published-at"
DEFERRED_REASON_ATTRIBUTE = "mailwright-deferred-reason"

# EventBridge: producers put events with this detail-type on the bus; the
# detail is the request itself.
EVENT_DETAIL_TYPE = "EmailRequested"

# Where template bundles live in the templates bucket: <prefix><template_id>.json
TEMPLATES_PREFIX = "templates/"

# Key layout of the message log table: one item per request (sort key
# MESSAGE_LOG_REQUEST_SK), and feedback events as further items under the same
# partition key.
MESSAGE_LOG_REQUEST_SK = "request"
SES_MESSAGE_ID_INDEX = "by-ses-message-id"

# The suppression table's item recording the oldest address-key version items may still be stored under.
ADDRESS_KEY_MARKER = "meta#address-hashes"


class Env:
    """Environment variable keys the CDK app sets on the worker functions."""

    LANE = "MAILWRIGHT_LANE"
    QUEUE_URL = "MAILWRIGHT_QUEUE_URL"
    TEMPLATES_BUCKET = "MAILWRIGHT_TEMPLATES_BUCKET"
    PREFERENCES_TABLE = "MAILWRIGHT_PREFERENCES_TABLE"
    SUPPRESSION_TABLE = "MAILWRIGHT_SUPPRESSION_TABLE"
    IDEMPOTENCY_TABLE = "MAILWRIGHT_IDEMPOTENCY_TABLE"
    MESSAGES_TABLE = "MAILWRIGHT_MESSAGES_TABLE"
    CONFIGURATION_SET = "MAILWRIGHT_CONFIGURATION_SET"
    FROM_ADDRESS = "MAILWRIGHT_FROM_ADDRESS"
    UNSUBSCRIBE_BASE_URL = "MAILWRIGHT_UNSUBSCRIBE_BASE_URL"
    UNSUBSCRIBE_SECRET_ARN = "MAILWRIGHT_UNSUBSCRIBE_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
    # The keyring that keys address hashes (mailwright.address_keys); read by the workers, feedback and unsubscribe.
    ADDRESS_KEY_SECRET_ARN = "MAILWRIGHT_ADDRESS_KEY_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
    POSTAL_ADDRESS = "MAILWRIGHT_POSTAL_ADDRESS"
    SEND_RATE_PER_WORKER = "MAILWRIGHT_SEND_RATE_PER_WORKER"
    SES_MAX_SEND_RATE = "MAILWRIGHT_SES_MAX_SEND_RATE"
    PACING_MAX_WAIT_SECONDS = "MAILWRIGHT_PACING_MAX_WAIT_SECONDS"
    PACING_SHARDS = "MAILWRIGHT_PACING_SHARDS"
    QUOTA_HOLDS = "MAILWRIGHT_QUOTA_HOLDS"
    QUOTA_REFRESH_SECONDS = "MAILWRIGHT_QUOTA_REFRESH_SECONDS"
    SEND_CONCURRENCY = "MAILWRIGHT_SEND_CONCURRENCY"
    IDEMPOTENCY_TTL_SECONDS = "MAILWRIGHT_IDEMPOTENCY_TTL_SECONDS"
    MESSAGE_LOG_TTL_DAYS = "MAILWRIGHT_MESSAGE_LOG_TTL_DAYS"
    RATE_LIMITS = "MAILWRIGHT_RATE_LIMITS"
    TEMPLATE_CACHE_SECONDS = "MAILWRIGHT_TEMPLATE_CACHE_SECONDS"
    MAX_BACKOFF_SECONDS = "MAILWRIGHT_MAX_BACKOFF_SECONDS"
    # Read by the feedback function only.
    SOFT_BOUNCE_THRESHOLD = "MAILWRIGHT_SOFT_BOUNCE_THRESHOLD"
    SOFT_BOUNCE_WINDOW_DAYS = "MAILWRIGHT_SOFT_BOUNCE_WINDOW_DAYS"
    SOFT_BOUNCE_SUPPRESSION_DAYS = "MAILWRIGHT_SOFT_BOUNCE_SUPPRESSION_DAYS"
    MIRROR_SES_SUPPRESSION = "MAILWRIGHT_MIRROR_SES_SUPPRESSION"
    # Read by the reputation circuit breaker only.
    BREAKER_MAPPING_ID = "MAILWRIGHT_BREAKER_MAPPING_ID"
    BREAKER_ALARMS = "MAILWRIGHT_BREAKER_ALARMS"
    BREAKER_AUTO_RESUME = "MAILWRIGHT_BREAKER_AUTO_RESUME"


class Keys:
    """Key and attribute names of the DynamoDB tables."""

    PREFERENCES_PK = "user_id"
    SUPPRESSION_PK = "address_hash"
    IDEMPOTENCY_PK = "pk"
    MESSAGES_PK = "pk"
    MESSAGES_SK = "sk"
    SES_MESSAGE_ID = "ses_message_id"
    TTL = "expires_at"


class Outputs:
    """CloudFormation output keys; the CLI finds a deployed stack's resources by them."""

    EVENT_BUS_NAME = "EventBusName"
    TEMPLATES_BUCKET = "TemplatesBucketName"
    PREFERENCES_TABLE = "PreferencesTableName"
    SUPPRESSION_TABLE = "SuppressionTableName"
    IDEMPOTENCY_TABLE = "IdempotencyTableName"
    MESSAGES_TABLE = "MessagesTableName"
    CONFIGURATION_SET = "ConfigurationSetName"
    INGEST_DLQ_URL = "IngestDlqUrl"
    FEEDBACK_QUEUE_URL = "FeedbackQueueUrl"
    FEEDBACK_DLQ_URL = "FeedbackDlqUrl"
    FEEDBACK_TOPIC_ARN = "FeedbackTopicArn"
    FEEDBACK_WORKER_NAME = "FeedbackWorkerName"
    UNSUBSCRIBE_URL = "UnsubscribeUrl"
    # The address keyring secret (the CLI hashes addresses with it: suppression commands, migration).
    ADDRESS_KEY_SECRET_ARN = "AddressKeySecretArn"  # noqa: S105 - an output name, not a secret
    # Operations: where alarms go, the dashboard, and the alarms that pause the bulk lane (comma-separated).
    ALARM_TOPIC_ARN = "AlarmTopicArn"
    DASHBOARD_NAME = "DashboardName"
    REPUTATION_ALARMS = "ReputationAlarmNames"
    # Alarm state changes the breaker never acted on (undelivered, or its function failed on them).
    BREAKER_DLQ_URL = "BreakerDlqUrl"
    # DNS records to publish when the stack has a sending domain (zone-file lines).
    MAIL_FROM_MX_RECORD = "MailFromMxRecord"
    MAIL_FROM_SPF_RECORD = "MailFromSpfRecord"
    DMARC_RECORD = "DmarcRecord"

    @staticmethod
    def queue_url(lane: str) -> str:
        """Output key of a lane queue's URL, e.g. CriticalQueueUrl."""
        return f"{lane.capitalize()}QueueUrl"

    @staticmethod
    def dlq_url(lane: str) -> str:
        """Output key of a lane's dead-letter queue URL, e.g. CriticalDlqUrl."""
        return f"{lane.capitalize()}DlqUrl"

    @staticmethod
    def worker_name(lane: str) -> str:
        """Output key of a lane worker's function name, e.g. CriticalWorkerName."""
        return f"{lane.capitalize()}WorkerName"

    @staticmethod
    def dkim_record(number: int) -> str:
        """Output key of one of the three Easy DKIM CNAME records, e.g. DkimRecord1."""
        return f"DkimRecord{number}"


# The Lambda handler of the send worker, named by string so infra never imports it.
SEND_WORKER_HANDLER = "mailwright.handlers.send_worker.handler"
# The feedback function: SES events from the feedback queue.
FEEDBACK_HANDLER = "mailwright.handlers.feedback.handler"
# The unsubscribe endpoint (a Lambda function URL): the preference page and RFC 8058 one-click POSTs.
UNSUBSCRIBE_HANDLER = "mailwright.handlers.unsubscribe.handler"
# The reputation circuit breaker: CloudWatch alarm state changes pause and resume the bulk lane.
BREAKER_HANDLER = "mailwright.handlers.breaker.handler"

# CloudWatch: the namespace of mailwright's EMF metrics and the dimension every function adds.
METRICS_NAMESPACE = "Mailwright"
SERVICE_NAME = "mailwright"
# Outcome metrics carry these dimensions (beside `service`). UNKNOWN stands in for a category when no
# template was found, and for a lane or category that an SES event's tags do not name.
METRIC_DIMENSIONS: tuple[str, ...] = ("lane", "category")
UNKNOWN = "unknown"
# The send workers' metric of the share of SES's daily quota used (percent, no dimensions but `service`).
QUOTA_USED_METRIC = "QuotaUsedPercent"
# The lane the reputation circuit breaker pauses: critical and standard mail keeps flowing.
BREAKER_LANE = "bulk"

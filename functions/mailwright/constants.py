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
# Folded into a digest email (issue 17): the message log names the digest email's request id.
STATUS_DIGESTED = "digested"
TERMINAL_STATUSES: tuple[str, ...] = (
    STATUS_SENT,
    STATUS_SUPPRESSED,
    STATUS_OPTED_OUT,
    STATUS_RATE_LIMITED,
    STATUS_REJECTED,
    # Scheduled sends (mailwright.scheduling): a request cancelled before it was sent. Final, never re-evaluated.
    "cancelled",
    STATUS_DIGESTED,
)
# Not terminal: handed back to the queue until the recipient's quiet hours end (mailwright.timing).
STATUS_DEFERRED = "deferred"
# Template categories held during a recipient's quiet hours unless context says otherwise.
DEFAULT_QUIET_HOURS_CATEGORIES: tuple[str, ...] = ("marketing", "product")

# Rejections that a template caused rather than the request's shape: counted as RenderFailed, and against
# an A/B variant's rendering-failure rate.
RENDER_REASON_CODES: frozenset[str] = frozenset(
    {"missing_variable", "render_error", "sandbox_violation", "header_injection"}
)
# A deferred record is enqueued again as a new message carrying these SQS message attributes: how many
# times it was deferred, when its producer first published it (epoch seconds), and why it was deferred.
DEFERRALS_ATTRIBUTE = "mailwright-deferrals"
PUBLISHED_AT_ATTRIBUTE = "mailwright-published-at"
DEFERRED_REASON_ATTRIBUTE = "mailwright-deferred-reason"

# EventBridge: producers put events with this detail-type on the bus; the
# detail is the request itself.
EVENT_DETAIL_TYPE = "EmailRequested"

# Outcome events (mailwright.outcome_events): what mailwright tells producers on the same bus.
OUTCOME_EVENT_SOURCE = "mailwright"
OUTCOME_DETAIL_TYPES: tuple[str, ...] = (
    "EmailSent",
    "EmailDelivered",
    "EmailBounced",
    "EmailComplained",
    "EmailDeliveryDelayed",
    "EmailOpened",
    "EmailClicked",
    "EmailRejected",
    "EmailSuppressed",
    "EmailOptedOut",
    "EmailRateLimited",
    "EmailFailed",
    # Reserved for the timing issue's states (send_at, cancel_key, digest_key): nothing records them yet.
    "EmailScheduled",
    "EmailCancelled",
    "EmailDigested",
)
# The default of `outcome_events`: what went wrong or may need the producer's action. Each is rare (a few
# per hundred emails at most), so together they cost cents per million emails, where EmailSent and
# EmailDelivered cost $1 each per million (one PutEvents entry per email) and opens and clicks more.
DEFAULT_OUTCOME_EVENTS: tuple[str, ...] = (
    "EmailBounced",
    "EmailComplained",
    "EmailDeliveryDelayed",
    "EmailRejected",
    "EmailSuppressed",
    "EmailOptedOut",
    "EmailRateLimited",
    "EmailFailed",
)
# A request that reached a dead-letter queue: recorded in the message log with this status (not terminal:
# redriven, it is processed again) and announced as EmailFailed.
STATUS_FAILED = "failed"

# Where template bundles live in the templates bucket: <prefix><template_id>.json
TEMPLATES_PREFIX = "templates/"
# Beside a template's directory: the published version `mailwright templates pull` brought into the repo,
# which the deploy may then replace (see mailwright.templates.publishing).
PUBLISHED_FILE = "published.json"
# Where the deploy stages the repository's bundles (CDK's BucketDeployment, pruned); the templates deploy
# function then copies the changed ones up, never over a studio version. Template ids never start with "_".
TEMPLATES_STAGING_PREFIX = TEMPLATES_PREFIX + "_deploy/"
# Unpublished edits the studio sends as test emails: <prefix>_drafts/<template_id>.json. A request names one
# by `template_version` "draft:<S3 version id>"; it is never the template's live version.
DRAFTS_PREFIX = TEMPLATES_PREFIX + "_drafts/"
DRAFT_VERSION_PREFIX = "draft:"

# Key layout of the message log table: one item per request (sort key
# MESSAGE_LOG_REQUEST_SK), and feedback events as further items under the same
# partition key.
MESSAGE_LOG_REQUEST_SK = "request"
SES_MESSAGE_ID_INDEX = "by-ses-message-id"
# The status API's lookups by recipient: request items by keyed address hash, newest first
# (partition key Keys.RECIPIENT_HASH, sort key Keys.COMPLETED_AT, keys only).
RECIPIENT_INDEX = "by-recipient"
# A request id: the first 32 hex characters of a SHA-256 (mailwright.request.EmailRequest.request_id).
REQUEST_ID_PATTERN = r"^[0-9a-f]{32}$"

# The suppression table's item recording the oldest address-key version items may still be stored under.
ADDRESS_KEY_MARKER = "meta#address-hashes"

# Producers of the HTTPS API (issue 15): a name is an SES tag value and part of API key and usage plan
# names, so it keeps to lower-case letters, digits, _ and -. A POST /v1/messages holds 1 to this many requests.
PRODUCER_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_API_BATCH = 100


# The ingest bridge (Kafka and RabbitMQ into the lanes) finds each lane's queue URL here; the producer
# SDK's Publisher.from_env reads the same names.
LANE_QUEUE_URL_VARIABLE = "MAILWRIGHT_{lane}_QUEUE_URL"


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
    # Template categories held during quiet hours (comma-separated); the local stack's digest window override.
    QUIET_HOURS_CATEGORIES = "MAILWRIGHT_QUIET_HOURS_CATEGORIES"
    DIGEST_WINDOW_SECONDS = "MAILWRIGHT_DIGEST_WINDOW_SECONDS"
    # Read by the feedback function only.
    SOFT_BOUNCE_THRESHOLD = "MAILWRIGHT_SOFT_BOUNCE_THRESHOLD"
    SOFT_BOUNCE_WINDOW_DAYS = "MAILWRIGHT_SOFT_BOUNCE_WINDOW_DAYS"
    SOFT_BOUNCE_SUPPRESSION_DAYS = "MAILWRIGHT_SOFT_BOUNCE_SUPPRESSION_DAYS"
    MIRROR_SES_SUPPRESSION = "MAILWRIGHT_MIRROR_SES_SUPPRESSION"
    # Read by the reputation circuit breaker only.
    BREAKER_MAPPING_ID = "MAILWRIGHT_BREAKER_MAPPING_ID"
    BREAKER_ALARMS = "MAILWRIGHT_BREAKER_ALARMS"
    BREAKER_AUTO_RESUME = "MAILWRIGHT_BREAKER_AUTO_RESUME"
    # Secondary email providers (JSON list of name/kind/settings/secret ARN; never a secret itself), read by
    # the send workers and the provider webhook function; unset: SES alone, as without this feature.
    PROVIDERS = "MAILWRIGHT_PROVIDERS"
    # A send worker's failover policy (JSON: enabled, provider, breaker thresholds); unset: the lane's default.
    FAILOVER = "MAILWRIGHT_FAILOVER"
    # A/B variants' automatic switch-off (JSON: thresholds, minimum volume, state cache), read by the send
    # workers and the feedback function; the feedback function also gets IDEMPOTENCY_TABLE, where the
    # variants' counters and states live.
    VARIANTS = "MAILWRIGHT_VARIANTS"
    # Read by the HTTPS API's function only: the lane queues it publishes to (JSON, lane -> URL) and the
    # table that maps an API key id to its producer.
    LANE_QUEUE_URLS = "MAILWRIGHT_LANE_QUEUE_URLS"
    PRODUCERS_TABLE = "MAILWRIGHT_PRODUCERS_TABLE"

    @staticmethod
    def lane_queue_url(lane: str) -> str:
        """The variable holding a lane queue's URL, e.g. MAILWRIGHT_CRITICAL_QUEUE_URL (read by the ingest bridge)."""
        return LANE_QUEUE_URL_VARIABLE.format(lane=lane.upper())

    # Outcome events, webhooks and dead-lettered requests (mailwright.event_settings).
    EVENT_BUS_NAME = "MAILWRIGHT_EVENT_BUS_NAME"
    OUTCOME_EVENTS = "MAILWRIGHT_OUTCOME_EVENTS"
    DEAD_LETTER_QUEUES = "MAILWRIGHT_DEAD_LETTER_QUEUES"
    WEBHOOK_ENDPOINTS = "MAILWRIGHT_WEBHOOK_ENDPOINTS"
    WEBHOOK_STATE_TABLE = "MAILWRIGHT_WEBHOOK_STATE_TABLE"
    WEBHOOK_ARCHIVE_BUCKET = "MAILWRIGHT_WEBHOOK_ARCHIVE_BUCKET"
    WEBHOOK_RETRY = "MAILWRIGHT_WEBHOOK_RETRY"
    WEBHOOK_ALLOW_LOOPBACK = "MAILWRIGHT_WEBHOOK_ALLOW_LOOPBACK"
    # Scheduled sends (mailwright.scheduling), read by the send workers: the EventBridge Scheduler group the
    # long schedules go in, the role the schedules send with, the lane queue's ARN (their target), the
    # target's dead-letter queue and the customer managed key that encrypts them. Unset: no long schedules
    # (a request more than 15 minutes ahead is retried as a failure with a clear reason).
    SCHEDULE_GROUP = "MAILWRIGHT_SCHEDULE_GROUP"
    SCHEDULER_ROLE_ARN = "MAILWRIGHT_SCHEDULER_ROLE_ARN"
    QUEUE_ARN = "MAILWRIGHT_QUEUE_ARN"
    SCHEDULE_DLQ_ARN = "MAILWRIGHT_SCHEDULE_DLQ_ARN"
    SCHEDULE_KEY_ARN = "MAILWRIGHT_SCHEDULE_KEY_ARN"


class Keys:
    """Key and attribute names of the DynamoDB tables."""

    PREFERENCES_PK = "user_id"
    SUPPRESSION_PK = "address_hash"
    IDEMPOTENCY_PK = "pk"
    MESSAGES_PK = "pk"
    MESSAGES_SK = "sk"
    SES_MESSAGE_ID = "ses_message_id"
    # The request item's keyed address hash and completion time: the keys of RECIPIENT_INDEX.
    RECIPIENT_HASH = "recipient_hash"
    COMPLETED_AT = "completed_at"
    TTL = "expires_at"
    # The producers table: one item per API key, naming its producer.
    PRODUCERS_PK = "api_key_id"
    # A scheduled request item's owner (its producer, or SCHEDULE_OWNER_NONE) and send time: the keys of
    # SCHEDULE_INDEX. Only `scheduled` items hold them, so the index is sparse.
    SCHEDULE_OWNER = "scheduled_by"
    SEND_AT = "send_at"


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
    # Secondary providers (only with `providers` in context): their names and kinds, each lane's failover
    # (JSON, for `mailwright providers`), and the provider webhook's URL (with a SendGrid or Mailgun provider).
    PROVIDERS = "Providers"
    FAILOVER = "Failover"
    PROVIDER_WEBHOOK_URL = "ProviderWebhookUrl"
    # DNS records to publish when the stack has a sending domain (zone-file lines).
    MAIL_FROM_MX_RECORD = "MailFromMxRecord"
    MAIL_FROM_SPF_RECORD = "MailFromSpfRecord"
    DMARC_RECORD = "DmarcRecord"
    # The HTTPS API (/v1/...): its stage's base URL and its id (for `aws apigateway test-invoke-method`).
    API_URL = "ApiUrl"
    API_ID = "ApiId"
    # The ingest bridge (with ingest.kafka or ingest.rabbitmq), and where Kafka batches it gave up on are recorded.
    BRIDGE_FUNCTION_NAME = "IngestBridgeName"
    KAFKA_FAILURE_QUEUE_URL = "KafkaFailureQueueUrl"
    # Outcome events: the publisher's DLQ; webhooks: their state table and archive (endpoints: `webhook_endpoint`).
    EVENTS_DLQ_URL = "OutcomeEventsDlqUrl"
    WEBHOOK_STATE_TABLE = "WebhookStateTableName"
    WEBHOOK_ARCHIVE_BUCKET = "WebhookArchiveBucketName"
    WEBHOOK_ENDPOINT_PREFIX = "WebhookEndpoint"
    # The producers' API (API keys, usage plans): its base URL and id, each declared producer's usage
    # plan id (JSON), the key-to-producer table, and the role EventBridge Scheduler deletes rotated keys with.
    PRODUCER_API_URL = "ProducerApiUrl"
    PRODUCER_API_ID = "ProducerApiId"
    PRODUCER_PLANS = "ProducerPlans"
    PRODUCERS_TABLE = "ProducersTableName"
    KEY_RETIREMENT_ROLE_ARN = "KeyRetirementRoleArn"
    # Scheduled sends: the EventBridge Scheduler group of the long schedules (the CLI deletes them on cancel).
    SCHEDULE_GROUP = "ScheduleGroupName"
    # ... and the DLQ of what EventBridge Scheduler could not deliver (`mailwright dlq list --lane schedules`).
    SCHEDULE_DLQ_URL = "ScheduleDlqUrl"

    @staticmethod
    def queue_url(lane: str) -> str:
        """Output key of a lane queue's URL, e.g. CriticalQueueUrl."""
        return f"{lane.capitalize()}QueueUrl"

    @staticmethod
    def dlq_url(lane: str) -> str:
        """Output key of a lane's dead-letter queue URL, e.g. CriticalDlqUrl."""
        return f"{lane.capitalize()}DlqUrl"

    @staticmethod
    def parked_dlq_url(lane: str) -> str:
        """Output key of the queue a lane's dead letters are parked in once recorded failed, e.g. CriticalParkedUrl."""
        return f"{lane.capitalize()}ParkedUrl"

    @staticmethod
    def webhook_endpoint(name: str) -> str:
        """Output key of one webhook endpoint (JSON: name, url, queue, DLQ, secret), e.g. WebhookEndpointShop."""
        return Outputs.WEBHOOK_ENDPOINT_PREFIX + "".join(part.capitalize() for part in name.split("-"))

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
# The HTTPS API behind API Gateway (REST, proxy integration): the status API under /v1.
API_HANDLER = "mailwright.handlers.api.handler"

# The templates deployment (a CloudFormation custom resource): uploads changed bundles, never over a studio's.
TEMPLATES_DEPLOY_HANDLER = "mailwright.handlers.templates_deploy.handler"

# The provider webhook (a Lambda function URL): signed SendGrid and Mailgun events, one path per provider.
PROVIDER_WEBHOOK_HANDLER = "mailwright.handlers.provider_webhook.handler"

# Email providers. SES is the primary and is named `ses` in the message log and metrics; secondaries are
# named in context. Kinds of secondary: SES in another region, an SMTP relay, SendGrid, Mailgun.
PROVIDER_SES = "ses"
PROVIDER_KIND_SES = "ses_region"
PROVIDER_KIND_SMTP = "smtp"
PROVIDER_KIND_SENDGRID = "sendgrid"
PROVIDER_KIND_MAILGUN = "mailgun"
PROVIDER_KINDS: tuple[str, ...] = (PROVIDER_KIND_SES, PROVIDER_KIND_SMTP, PROVIDER_KIND_SENDGRID, PROVIDER_KIND_MAILGUN)
# The kinds that post signed feedback to the provider webhook.
WEBHOOK_PROVIDER_KINDS: tuple[str, ...] = (PROVIDER_KIND_SENDGRID, PROVIDER_KIND_MAILGUN)
# Lanes that fail over to the secondary by default while SES is out; the others (bulk) wait for SES.
FAILOVER_LANES: tuple[str, ...] = ("critical", "standard")
# Metrics of failover (dimensions lane and provider), which the CDK app alarms on and graphs:
# a breaker's state as the workers last read it (1 open or half-open, 0 closed), reported every 30 s
# while a lane sends, and the emails a secondary sent (SES sent `Sent` minus these).
METRIC_PROVIDER_BREAKER_OPEN = "ProviderBreakerOpen"
METRIC_FAILED_OVER = "FailedOver"
METRIC_PROVIDER_BREAKER_OPENED = "ProviderBreakerOpened"
# The ingest bridge: Kafka (MSK, self-managed) and RabbitMQ (Amazon MQ) records into the lane queues.
BRIDGE_HANDLER = "mailwright.handlers.bridge.handler"
# What the bridge tells apart: the event sources Lambda names in `eventSource`.
INGEST_SOURCES: tuple[str, ...] = ("kafka", "rabbitmq")
# Outcome events: the message log's stream in, events on the bus out.
EVENTS_PUBLISHER_HANDLER = "mailwright.handlers.events_publisher.handler"
# Requests that reached a dead-letter queue: recorded as failed (EmailFailed) and parked for redrive.
DEAD_LETTERS_HANDLER = "mailwright.handlers.dead_letters.handler"
# Webhooks: each endpoint's queue in, signed POSTs out.
WEBHOOK_SENDER_HANDLER = "mailwright.handlers.webhooks.handler"

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

# A/B variants (mailwright.variants). Per template and variant (dimensions `template`, `variant`): the
# emails sent and the requests their parts failed to render (send workers), and the requests first
# delivered, opened, clicked, bounced or complained about (feedback function): `templates report` reads
# them on a deployed stack. VariantDisabled counts variants switched off automatically, per template and
# variant and once more without those dimensions, for the one alarm that says so.
METRIC_VARIANT_DISABLED = "VariantDisabled"
VARIANT_METRICS: dict[str, str] = {
    "sent": "VariantSent",
    "render_failed": "VariantRenderFailed",
    "delivered": "VariantDelivered",
    "opened": "VariantOpened",
    "clicked": "VariantClicked",
    "bounced": "VariantBounced",
    "complained": "VariantComplained",
}
# The idempotency table's item of a template's variants: counters and switched-off variants.
VARIANTS_KEY_PREFIX = "variants#"


# Scheduled sends and cancellation (mailwright.scheduling). A request's `send_at` may be this far ahead at
# most; up to SHORT_SCHEDULE_SECONDS ahead, an SQS message delay holds it, further ahead an EventBridge
# Scheduler one-time schedule. A `cancel_key` stays in force this long after its cancel (the longest a
# request published before the cancel can still be waiting for its send_at, plus a day of redeliveries).
STATUS_SCHEDULED = "scheduled"
STATUS_CANCELLED = "cancelled"
MAX_SCHEDULE_AHEAD_SECONDS = 366 * 86400
SHORT_SCHEDULE_SECONDS = 900
CANCEL_KEY_TTL_SECONDS = MAX_SCHEDULE_AHEAD_SECONDS + 86400
CANCEL_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
# The message log's scheduled requests by owner, soonest first (partition Keys.SCHEDULE_OWNER, sort
# Keys.SEND_AT); the owner of a request that names no producer.
SCHEDULE_INDEX = "by-schedule"
SCHEDULE_OWNER_NONE = "-"
# What the index projects beside its keys: what `scheduled list` shows, so it reads nothing else.
SCHEDULE_INDEX_ATTRIBUTES: tuple[str, ...] = (
    "status",
    "received_at",
    "lane",
    "producer",
    "user_id",
    "template_id",
    "recipient_masked",
    "cancel_key",
)
# The deferral reason of a request held back until its send_at (an SQS delay of at most 15 minutes).
REASON_SCHEDULED = "scheduled"
# Digests (mailwright.digests): the idempotency table's items of a user's digest windows and of the
# requests folded into them.
DIGEST_KEY_PREFIX = "digest#"

# Powertools' tracing switch: the stack sets it on untraced functions, whose handlers then build no Tracer.
TRACE_DISABLED_ENV = "POWERTOOLS_TRACE_DISABLED"

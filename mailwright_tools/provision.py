"""Create the stack's resources with plain boto3 calls, against the local (moto) endpoint.

Mirrors what `infra/` deploys, from the same settings (`infra.config`) and
the same names (`mailwright.constants`), so the local workers see what
deployed workers see.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.config import (
    FEEDBACK_BATCH_SIZE,
    FEEDBACK_MAX_CONCURRENCY,
    FEEDBACK_MAX_RECEIVE_COUNT,
    FEEDBACK_TIMEOUT_SECONDS,
    FEEDBACK_VISIBILITY_TIMEOUT_SECONDS,
    FeedbackResources,
    MailwrightConfig,
    WorkerResources,
    feedback_environment,
    priority_filter,
    schedule_environment,
    worker_environment,
)
from mailwright.adapters.address_keys import DynamoAddressKeyMarker
from mailwright.constants import (
    EVENT_DETAIL_TYPE,
    LANES,
    RECIPIENT_INDEX,
    SCHEDULE_INDEX,
    SCHEDULE_INDEX_ATTRIBUTES,
    SES_MESSAGE_ID_INDEX,
    TEMPLATES_PREFIX,
    Keys,
)
from mailwright.templates import bundle_directory

DLQ_RETENTION_SECONDS = 14 * 86400


@dataclass(frozen=True)
class StackResources:
    """Names and URLs of one provisioned stack."""

    region: str
    queues: dict[str, str]
    dlqs: dict[str, str]
    templates_bucket: str
    preferences_table: str
    suppression_table: str
    idempotency_table: str
    messages_table: str
    configuration_set: str
    unsubscribe_secret_arn: str
    address_key_secret_arn: str
    # Where unsubscribe links point unless the settings name a base URL; the local
    # stack sets its own endpoint's (mailwright_tools.unsubscribe_server).
    unsubscribe_base_url: str = "https://example.com/unsubscribe"
    event_bus: str = ""
    ingest_dlq: str = ""
    sender_identity: str = ""
    # Secondary providers' secrets by provider name (the local stack's loopback relay).
    provider_secrets: dict[str, str] = field(default_factory=dict)
    # Scheduled sends: the schedule group, and what a worker's schedules need (role, DLQ, key; queues by lane).
    schedule_group: str = ""
    schedule_settings: dict[str, str] = field(default_factory=dict)

    def worker_environment(self, config: MailwrightConfig, lane: str) -> dict[str, str]:
        """The environment the lane's worker runs with."""
        return worker_environment(
            config=config,
            lane=config.lanes[lane],
            queue_url=self.queues[lane],
            resources=WorkerResources(
                templates_bucket=self.templates_bucket,
                preferences_table=self.preferences_table,
                suppression_table=self.suppression_table,
                idempotency_table=self.idempotency_table,
                messages_table=self.messages_table,
                configuration_set=self.configuration_set,
                unsubscribe_secret_arn=self.unsubscribe_secret_arn,
                address_key_secret_arn=self.address_key_secret_arn,
                unsubscribe_base_url=self.unsubscribe_base_url,
                provider_secrets=self.provider_secrets,
            ),
        ) | self._schedule_environment(lane)

    def _schedule_environment(self, lane: str) -> dict[str, str]:
        found = self.schedule_settings
        if not found:
            return {}
        return schedule_environment(
            group=found["group"],
            role_arn=found["role_arn"],
            queue_arn=found[f"queue_arn_{lane}"],
            dead_letter_arn=found["dead_letter_arn"],
            kms_key_arn=found["kms_key_arn"],
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return asdict(self)


def _table(
    client: Any,
    name: str,
    keys: list[tuple[str, str]],
    *,
    ttl: bool,
    gsi: tuple[str, str] | None = None,
    sorted_gsi: tuple[str, str, str] | None = None,
    stream: str | None = None,
    included_gsi: tuple[str, str, str, tuple[str, ...]] | None = None,
) -> None:
    definitions = {k: "S" for k, _ in keys}
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": k, "KeyType": kind} for k, kind in keys],
        "BillingMode": "PAY_PER_REQUEST",
    }
    indexes = []
    if gsi:
        index_name, attribute = gsi
        definitions[attribute] = "S"
        indexes.append(
            {
                "IndexName": index_name,
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        )
    if sorted_gsi:
        # A string partition key and a numeric sort key, as infra/storage.py's recipient index.
        index_name, attribute, sort_attribute = sorted_gsi
        definitions[attribute], definitions[sort_attribute] = "S", "N"
        indexes.append(
            {
                "IndexName": index_name,
                "KeySchema": [
                    {"AttributeName": attribute, "KeyType": "HASH"},
                    {"AttributeName": sort_attribute, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        )
    if included_gsi:
        # As infra/storage.py's schedule index: string partition, numeric sort, some attributes projected.
        index_name, attribute, sort_attribute, included = included_gsi
        definitions[attribute], definitions[sort_attribute] = "S", "N"
        indexes.append(
            {
                "IndexName": index_name,
                "KeySchema": [
                    {"AttributeName": attribute, "KeyType": "HASH"},
                    {"AttributeName": sort_attribute, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(included)},
            }
        )
    if indexes:
        params["GlobalSecondaryIndexes"] = indexes
    params["AttributeDefinitions"] = [{"AttributeName": k, "AttributeType": t} for k, t in definitions.items()]
    if stream:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    client.create_table(**params)
    if ttl:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": Keys.TTL})


def upload_templates(s3: Any, bucket: str, templates_dir: Path) -> list[str]:
    """Bundle every template under `templates_dir` and upload it; return the template ids."""
    with tempfile.TemporaryDirectory() as out:
        files = bundle_directory(templates_dir, Path(out))
        for file in files:
            s3.put_object(
                Bucket=bucket,
                Key=f"{TEMPLATES_PREFIX}{file.name}",
                Body=file.read_bytes(),
                ContentType="application/json",
            )
    return [f.stem for f in files]


def upload_template_versions(s3: Any, bucket: str, templates_dir: Path) -> dict[str, str]:
    """Bundle and upload every template; the S3 version id of each upload, by template id."""
    versions = {}
    with tempfile.TemporaryDirectory() as out:
        for file in bundle_directory(templates_dir, Path(out)):
            response = s3.put_object(
                Bucket=bucket,
                Key=f"{TEMPLATES_PREFIX}{file.name}",
                Body=file.read_bytes(),
                ContentType="application/json",
            )
            versions[file.stem] = str(response.get("VersionId") or response.get("ETag", "").strip('"'))
    return versions


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The ARN of a queue."""
    arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def provision_ingest(
    config: MailwrightConfig, *, events: Any, sqs: Any, queues: dict[str, str], prefix: str = "mailwright"
) -> tuple[str, str]:
    """The EventBridge bus, one rule per lane routing on `detail.priority`, and the ingest DLQ; (bus, DLQ URL).

    The deployed rules deliver `$.detail` with InputPath; moto honours only
    InputTransformer, so the same projection is written as one.
    """
    bus = config.stack_name
    events.create_event_bus(Name=bus)
    ingest_dlq = sqs.create_queue(
        QueueName=f"{prefix}-ingest-dlq",
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    dlq_arn = queue_arn(sqs, ingest_dlq)
    for lane, queue_url in queues.items():
        rule = f"{prefix}-{lane}"
        events.put_rule(
            Name=rule,
            EventBusName=bus,
            Description=f"mailwright requests for the {lane} lane",
            EventPattern=json.dumps(
                {"detail-type": [EVENT_DETAIL_TYPE], "detail": {"priority": priority_filter(lane)}}
            ),
        )
        events.put_targets(
            Rule=rule,
            EventBusName=bus,
            Targets=[
                {
                    "Id": f"{lane}-queue",
                    "Arn": queue_arn(sqs, queue_url),
                    "InputTransformer": {"InputPathsMap": {"detail": "$.detail"}, "InputTemplate": "<detail>"},
                    "DeadLetterConfig": {"Arn": dlq_arn},
                    "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
                }
            ],
        )
    return bus, ingest_dlq


def provision(
    config: MailwrightConfig,
    *,
    templates_dir: Path,
    session: boto3.session.Session | None = None,
    prefix: str = "mailwright",
) -> StackResources:
    """Create queues, tables, bucket, SES identity and configuration set, and the signing secret."""
    session = session or boto3.session.Session()
    sqs = session.client("sqs")
    dynamodb = session.client("dynamodb")
    s3 = session.client("s3")
    ses = session.client("sesv2")
    secrets_client = session.client("secretsmanager")
    events = session.client("events")

    queues, dlqs = {}, {}
    for lane in LANES:
        settings = config.lanes[lane]
        dlq_url = sqs.create_queue(
            QueueName=f"{prefix}-{lane}-dlq",
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queues[lane] = sqs.create_queue(
            QueueName=f"{prefix}-{lane}",
            Attributes={
                "VisibilityTimeout": str(settings.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(4 * 86400),
                "SqsManagedSseEnabled": "true",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
                ),
            },
        )["QueueUrl"]
        dlqs[lane] = dlq_url
    event_bus, ingest_dlq = provision_ingest(config, events=events, sqs=sqs, queues=queues, prefix=prefix)

    names = {
        "preferences": f"{prefix}-preferences",
        "suppression": f"{prefix}-suppression",
        "idempotency": f"{prefix}-idempotency",
        "messages": f"{prefix}-messages",
    }
    _table(dynamodb, names["preferences"], [(Keys.PREFERENCES_PK, "HASH")], ttl=False)
    _table(dynamodb, names["suppression"], [(Keys.SUPPRESSION_PK, "HASH")], ttl=True)
    _table(dynamodb, names["idempotency"], [(Keys.IDEMPOTENCY_PK, "HASH")], ttl=True)
    _table(
        dynamodb,
        names["messages"],
        [(Keys.MESSAGES_PK, "HASH"), (Keys.MESSAGES_SK, "RANGE")],
        ttl=True,
        gsi=(SES_MESSAGE_ID_INDEX, Keys.SES_MESSAGE_ID),
        sorted_gsi=(RECIPIENT_INDEX, Keys.RECIPIENT_HASH, Keys.COMPLETED_AT),
        included_gsi=(SCHEDULE_INDEX, Keys.SCHEDULE_OWNER, Keys.SEND_AT, SCHEDULE_INDEX_ATTRIBUTES),
        # The outbox of outcome events, as deployed (mailwright_tools.provision_events reads it).
        stream="NEW_AND_OLD_IMAGES",
    )

    bucket = f"{prefix}-templates"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    upload_templates(s3, bucket, templates_dir)

    configuration_set = f"{prefix}-events"
    ses.create_configuration_set(ConfigurationSetName=configuration_set)
    ses.create_email_identity(EmailIdentity=config.identity)

    secret_arn = secrets_client.create_secret(
        Name=f"{prefix}/unsubscribe-signing-key", SecretString=secrets.token_urlsafe(48)
    )["ARN"]
    keyring = json.dumps({"current": "1", "1": secrets.token_urlsafe(48)})
    address_key_arn = secrets_client.create_secret(Name=f"{prefix}/address-keyring", SecretString=keyring)["ARN"]
    # Fresh tables hold no hash of an older key version: lookups need only the current one.
    DynamoAddressKeyMarker(dynamodb, names["suppression"]).set_readable_from(1, at=time.time(), actor="provision")

    schedule_group, schedule_settings = provision_schedules(session, sqs, queues, prefix=prefix)

    return StackResources(
        region=session.region_name or "us-east-1",
        queues=queues,
        dlqs=dlqs,
        templates_bucket=bucket,
        preferences_table=names["preferences"],
        suppression_table=names["suppression"],
        idempotency_table=names["idempotency"],
        messages_table=names["messages"],
        configuration_set=configuration_set,
        unsubscribe_secret_arn=secret_arn,
        address_key_secret_arn=address_key_arn,
        event_bus=event_bus,
        ingest_dlq=ingest_dlq,
        sender_identity=config.identity,
        schedule_group=schedule_group,
        schedule_settings=schedule_settings,
    )


def provision_schedules(
    session: boto3.session.Session, sqs: Any, queues: dict[str, str], *, prefix: str
) -> tuple[str, dict[str, str]]:
    """The schedule group, the schedules' DLQ and key, as infra/schedules.py deploys them; (group, settings).

    Locally the schedules run in-process (mailwright_tools.local.scheduler); the role is named, never assumed.
    """
    group = f"{prefix}-schedules"
    session.client("scheduler").create_schedule_group(Name=group)
    dlq = sqs.create_queue(
        QueueName=f"{prefix}-schedules-dlq",
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    key_arn = session.client("kms").create_key(Description=f"{prefix} schedules")["KeyMetadata"]["Arn"]
    account = key_arn.split(":")[4]
    settings = {
        "group": group,
        "dead_letter_url": dlq,
        "role_arn": f"arn:aws:iam::{account}:role/{prefix}-scheduler",
        "dead_letter_arn": queue_arn(sqs, dlq),
        "kms_key_arn": key_arn,
        **{f"queue_arn_{lane}": queue_arn(sqs, url) for lane, url in queues.items()},
    }
    return group, settings


@dataclass(frozen=True)
class FeedbackPath:
    """The SES feedback path: events topic -> feedback queue (+DLQ) -> feedback function, and its settings."""

    topic_arn: str
    queue_url: str
    dlq_url: str
    environment: dict[str, str]
    batch_size: int = FEEDBACK_BATCH_SIZE
    batching_window_seconds: int = 0
    max_concurrency: int = FEEDBACK_MAX_CONCURRENCY
    timeout_seconds: int = FEEDBACK_TIMEOUT_SECONDS
    max_receive_count: int = FEEDBACK_MAX_RECEIVE_COUNT


def provision_feedback(
    config: MailwrightConfig,
    resources: StackResources,
    *,
    session: boto3.session.Session,
    prefix: str = "mailwright",
) -> FeedbackPath:
    """The topic SES publishes events to, its SQS subscription (SNS envelopes, as deployed) and the feedback DLQ."""
    sqs = session.client("sqs")
    sns = session.client("sns")
    dlq_url = sqs.create_queue(
        QueueName=f"{prefix}-feedback-dlq",
        Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    queue_url = sqs.create_queue(
        QueueName=f"{prefix}-feedback",
        Attributes={
            "VisibilityTimeout": str(FEEDBACK_VISIBILITY_TIMEOUT_SECONDS),
            "MessageRetentionPeriod": str(14 * 86400),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": FEEDBACK_MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    topic_arn = sns.create_topic(Name=f"{prefix}-ses-events")["TopicArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn(sqs, queue_url),
        Attributes={
            "RawMessageDelivery": "false",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(sqs, dlq_url)}),
        },
    )
    environment = feedback_environment(
        config=config,
        resources=FeedbackResources(
            suppression_table=resources.suppression_table,
            messages_table=resources.messages_table,
            address_key_secret_arn=resources.address_key_secret_arn,
            queue_url=queue_url,
            idempotency_table=resources.idempotency_table,
        ),
    )
    return FeedbackPath(topic_arn=topic_arn, queue_url=queue_url, dlq_url=dlq_url, environment=environment)

"""Create the stack's resources with plain boto3 calls, against the local (moto) endpoint.

Mirrors what `infra/` deploys, from the same settings (`infra.config`) and
the same names (`mailwright.constants`), so the local workers see what
deployed workers see.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3

from infra.config import MailwrightConfig, WorkerResources, worker_environment
from mailwright.constants import LANES, SES_MESSAGE_ID_INDEX, TEMPLATES_PREFIX, Keys
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
            ),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return asdict(self)


def _table(
    client: Any, name: str, keys: list[tuple[str, str]], *, ttl: bool, gsi: tuple[str, str] | None = None
) -> None:
    definitions = {k: "S" for k, _ in keys}
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": k, "KeyType": kind} for k, kind in keys],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsi:
        index_name, attribute = gsi
        definitions[attribute] = "S"
        params["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index_name,
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    params["AttributeDefinitions"] = [{"AttributeName": k, "AttributeType": t} for k, t in definitions.items()]
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
    )

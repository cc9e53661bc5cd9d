"""The DynamoDB tables: preferences, suppression, idempotency and the message log."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.nag import acknowledge
from mailwright.constants import (
    RECIPIENT_INDEX,
    SCHEDULE_INDEX,
    SCHEDULE_INDEX_ATTRIBUTES,
    SES_MESSAGE_ID_INDEX,
    Keys,
)

_STRING = dynamodb.AttributeType.STRING


def _table(
    scope: Construct,
    construct_id: str,
    *,
    partition_key: str,
    sort_key: str | None = None,
    ttl: bool = False,
    point_in_time_recovery: bool = False,
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=_STRING),
        sort_key=dynamodb.Attribute(name=sort_key, type=_STRING) if sort_key else None,
        # Mail volume is spiky (a newsletter, then quiet): pay per request.
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        time_to_live_attribute=Keys.TTL if ttl else None,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        )
        if point_in_time_recovery
        else None,
        removal_policy=removal_policy,
        stream=stream,
    )


class Storage(Construct):
    """The four tables, as `preferences`, `suppression`, `idempotency` and `messages`."""

    def __init__(self, scope: Construct, construct_id: str, *, message_log_backups: bool = False) -> None:
        super().__init__(scope, construct_id)
        # Consent and suppression records are the legal memory of the service:
        # recoverable to the second and kept when the stack goes away.
        self.preferences = _table(self, "Preferences", partition_key=Keys.PREFERENCES_PK, point_in_time_recovery=True)
        # Soft-bounce suppressions carry an expiry; hard bounces and complaints do not.
        self.suppression = _table(
            self, "Suppression", partition_key=Keys.SUPPRESSION_PK, ttl=True, point_in_time_recovery=True
        )
        # Dedupe records only matter for a day: nothing to keep once the stack is gone.
        self.idempotency = _table(
            self, "Idempotency", partition_key=Keys.IDEMPOTENCY_PK, ttl=True, removal_policy=RemovalPolicy.DESTROY
        )
        acknowledge(
            self.idempotency,
            "AwsSolutions-DDB3",
            "Dedupe claims live for idempotency_ttl_hours (a day) and are rebuilt by the traffic itself; "
            "restoring them to an earlier second has no use, so no point-in-time recovery is paid for.",
        )
        # The message log is the evidence of what was sent; it expires by TTL, not by a stack delete.
        # With message_log_backups a bad write or delete can be undone to the second; the backups cost
        # $0.20 per GB-month beside the $0.25 of storage, most of what the log costs to keep.
        self.messages = _table(
            self,
            "Messages",
            partition_key=Keys.MESSAGES_PK,
            sort_key=Keys.MESSAGES_SK,
            ttl=True,
            point_in_time_recovery=message_log_backups,
            # The outbox of outcome events (infra/outcome_events.py): each write, the item before and after.
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        )
        if not message_log_backups:
            acknowledge(
                self.messages,
                "AwsSolutions-DDB3",
                "Point-in-time recovery of the message log is the message_log_backups setting (off by default): "
                "the log expires by TTL and its loss costs history, not consent; suppressions and preferences "
                "always have it.",
            )
        # SES feedback names the SES message id, not ours; this index finds our record.
        # Keys only: readers take the request id from it and read the item itself, so
        # the index stores ~100 bytes per email instead of a second copy of the item.
        self.messages.add_global_secondary_index(
            index_name=SES_MESSAGE_ID_INDEX,
            partition_key=dynamodb.Attribute(name=Keys.SES_MESSAGE_ID, type=_STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        # The status API's "what did we send to this address?": request items by keyed address hash,
        # newest first. Keys only, for the same reason: ~200 bytes and one write unit per request
        # logged; the feedback function's appends change neither key and write nothing here. A
        # search reads a page of ids, then their items (one BatchGetItem): searches are rare, emails not.
        # Scheduled sends (`mailwright scheduled list`, `cancel --key`): the `scheduled` request items by owner
        # (producer), soonest send_at first. Sparse: only scheduled items carry its keys, and the send or a
        # cancel removes the owner, so an item is written here twice in its life (in, out), ~250 bytes each;
        # the attributes the listing shows are projected, so a listing reads the index alone.
        self.messages.add_global_secondary_index(
            index_name=SCHEDULE_INDEX,
            partition_key=dynamodb.Attribute(name=Keys.SCHEDULE_OWNER, type=_STRING),
            sort_key=dynamodb.Attribute(name=Keys.SEND_AT, type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(SCHEDULE_INDEX_ATTRIBUTES),
        )
        self.messages.add_global_secondary_index(
            index_name=RECIPIENT_INDEX,
            partition_key=dynamodb.Attribute(name=Keys.RECIPIENT_HASH, type=_STRING),
            sort_key=dynamodb.Attribute(name=Keys.COMPLETED_AT, type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )

"""The ingest bridge: Lambda event source mappings on a Kafka topic and a RabbitMQ queue, feeding the lane queues.

Built only with `ingest.kafka` and/or `ingest.rabbitmq` in the settings.
Each mapping polls its source and invokes one small function (the bridge),
which validates every record and publishes it to its lane queue; the stack
grants the bridge what it touches (the lane queues, the templates, the
message log). The mappings' own permissions are granted here, because a
mapping reads its source with the function's execution role:

* Amazon MSK (IAM authentication): `kafka:DescribeClusterV2` and
  `kafka:GetBootstrapBrokers` on the cluster; `kafka-cluster:Connect`,
  `DescribeClusterDynamicConfiguration` on it, `DescribeTopic`/`ReadData` on
  the topic, `DescribeGroup`/`AlterGroup` on the consumer group; network
  interfaces in the cluster's VPC (`ec2:*NetworkInterface*`, `Describe*`).
* Self-managed Kafka: the secret (SASL/SCRAM credentials or the client
  certificate for mTLS), its key if customer managed, and network interfaces
  when the brokers sit in a VPC.
* Amazon MQ for RabbitMQ: `mq:DescribeBroker`, the secret, network interfaces.

A Kafka mapping retries a failing batch forever by default and blocks its
partition meanwhile. Here it runs in provisioned mode, the only mode with
error-handling controls: `retry_attempts` retries, each splitting the batch
(`BisectBatchOnFunctionError`), records older than `max_record_age_seconds`
skipped, and what was given up on described (topic, partition, offsets) in an
encrypted SQS queue that is alarmed on (`dlq-kafka`). RabbitMQ mappings have
no such controls: a failed batch goes back to the broker, which redelivers it
(bound it with the queue's own delivery limit and dead-letter exchange).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import (
    BRIDGE_MEMORY_MB,
    BRIDGE_TIMEOUT_SECONDS,
    IngestConfig,
    KafkaIngestConfig,
    RabbitMQIngestConfig,
)
from infra.functions import python_function
from infra.nag import XRAY_REASON, acknowledge
from mailwright.constants import BRIDGE_HANDLER

# Lambda creates network interfaces in the broker's or cluster's VPC: these EC2 actions take no resource ARNs
# Lambda could know in advance (Describe* none at all), so "*" is their only resource.
NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)
KAFKA_AUTH_TYPES = {
    "sasl_scram_512": lambda_.SourceAccessConfigurationType.SASL_SCRAM_512_AUTH,
    "sasl_scram_256": lambda_.SourceAccessConfigurationType.SASL_SCRAM_256_AUTH,
    "mtls": lambda_.SourceAccessConfigurationType.CLIENT_CERTIFICATE_TLS_AUTH,
}
# Long enough to read the offsets of a batch given up on and replay it from the topic.
FAILURE_RETENTION = Duration.days(14)


class IngestBridge(Construct):
    """The bridge `function`, its `mappings`, and the Kafka mapping's `failure_queue` (None without Kafka)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ingest: IngestConfig,
        code: lambda_.Code,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Function",
            log_group_id="Logs",
            description="mailwright ingest bridge: Kafka and RabbitMQ records into the lane queues",
            code=code,
            handler=BRIDGE_HANDLER,
            timeout=Duration.seconds(BRIDGE_TIMEOUT_SECONDS),
            memory_mb=BRIDGE_MEMORY_MB,
            environment=environment,
        )
        self.mappings: dict[str, lambda_.EventSourceMapping] = {}
        self.failure_queue: sqs.Queue | None = None
        self._network = False
        if ingest.kafka is not None:
            self._kafka(ingest.kafka)
        if ingest.rabbitmq is not None:
            self._rabbitmq(ingest.rabbitmq)
        if self._network:
            self._grant_network_interfaces()

    # -- Kafka ------------------------------------------------------------

    def _kafka(self, kafka: KafkaIngestConfig) -> None:
        self.failure_queue = sqs.Queue(
            self,
            "KafkaFailures",
            retention_period=FAILURE_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.failure_queue,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the Kafka event source mapping's on-failure destination "
            "(cdk-nag only recognises queues named in another queue's redrive policy). It is alarmed on (dlq-kafka).",
        )
        access: list[lambda_.SourceAccessConfiguration] = []
        if kafka.managed:
            self._grant_msk(kafka)
            self._network = True
        else:
            access.append(lambda_.SourceAccessConfiguration(type=KAFKA_AUTH_TYPES[kafka.auth], uri=kafka.secret_arn))
            self._grant_secret(kafka.secret_arn, kafka.secret_kms_key_arn)
            for subnet in kafka.subnet_ids:
                access.append(
                    lambda_.SourceAccessConfiguration(
                        type=lambda_.SourceAccessConfigurationType.VPC_SUBNET, uri=f"subnet:{subnet}"
                    )
                )
            for group in kafka.security_group_ids:
                access.append(
                    lambda_.SourceAccessConfiguration(
                        type=lambda_.SourceAccessConfigurationType.VPC_SECURITY_GROUP, uri=f"security_group:{group}"
                    )
                )
            self._network = self._network or bool(kafka.subnet_ids)
        self.mappings["kafka"] = lambda_.EventSourceMapping(
            self,
            "KafkaMapping",
            target=self.function,
            event_source_arn=kafka.cluster_arn or None,
            kafka_bootstrap_servers=list(kafka.bootstrap_servers) or None,
            kafka_topic=kafka.topic,
            kafka_consumer_group_id=kafka.consumer_group,
            starting_position=lambda_.StartingPosition(kafka.starting_position),
            batch_size=kafka.batch_size,
            max_batching_window=Duration.seconds(kafka.batching_window_seconds),
            source_access_configurations=access or None,
            # Bounded: a batch the bridge keeps failing is split, retried, then recorded in the failure queue
            # and skipped; by default Lambda would retry it forever and hold the partition.
            retry_attempts=kafka.retry_attempts,
            bisect_batch_on_error=True,
            max_record_age=Duration.seconds(kafka.max_record_age_seconds),
            on_failure=event_sources.SqsDlq(self.failure_queue),
            # The error-handling controls above exist only in provisioned mode.
            provisioned_poller_config=lambda_.ProvisionedPollerConfig(
                minimum_pollers=kafka.minimum_pollers, maximum_pollers=kafka.maximum_pollers
            ),
        )

    def _grant_msk(self, kafka: KafkaIngestConfig) -> None:
        cluster = kafka.cluster_arn
        # arn:...:cluster/<name>/<uuid> -> the topic and group ARNs of that cluster (IAM access control's forms).
        prefix, _, path = cluster.partition(":cluster/")
        topic = f"{prefix}:topic/{path}/{kafka.topic}"
        group = f"{prefix}:group/{path}/{kafka.consumer_group}"
        statements = [
            (["kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"], [cluster]),
            (["kafka-cluster:Connect", "kafka-cluster:DescribeClusterDynamicConfiguration"], [cluster]),
            (["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], [topic]),
            (["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"], [group]),
        ]
        for actions, resources in statements:
            self.function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

    # -- RabbitMQ ---------------------------------------------------------

    def _rabbitmq(self, rabbitmq: RabbitMQIngestConfig) -> None:
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["mq:DescribeBroker"], resources=[rabbitmq.broker_arn])
        )
        self._grant_secret(rabbitmq.secret_arn, rabbitmq.secret_kms_key_arn)
        # An Amazon MQ mapping reaches the broker through network interfaces in its VPC, public broker or not.
        self._network = True
        mapping = lambda_.EventSourceMapping(
            self,
            "RabbitMqMapping",
            target=self.function,
            event_source_arn=rabbitmq.broker_arn,
            batch_size=rabbitmq.batch_size,
            max_batching_window=Duration.seconds(rabbitmq.batching_window_seconds),
            source_access_configurations=[
                lambda_.SourceAccessConfiguration(
                    type=lambda_.SourceAccessConfigurationType.BASIC_AUTH, uri=rabbitmq.secret_arn
                ),
                lambda_.SourceAccessConfiguration(
                    type=lambda_.SourceAccessConfigurationType.VIRTUAL_HOST, uri=rabbitmq.virtual_host
                ),
            ],
        )
        # The L2 mapping has no `queues`; the CloudFormation resource does.
        cfn = mapping.node.default_child
        assert isinstance(cfn, lambda_.CfnEventSourceMapping)
        cfn.queues = [rabbitmq.queue]
        self.mappings["rabbitmq"] = mapping

    # -- shared -----------------------------------------------------------

    def _grant_secret(self, secret_arn: str, kms_key_arn: str) -> None:
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret_arn])
        )
        if kms_key_arn:
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[kms_key_arn],
                    # Only to read that secret, through Secrets Manager.
                    conditions={
                        "StringEquals": {"kms:ViaService": f"secretsmanager.{Stack.of(self).region}.amazonaws.com"}
                    },
                )
            )

    def _grant_network_interfaces(self) -> None:
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="EventSourceNetworkInterfaces", actions=list(NETWORK_INTERFACE_ACTIONS), resources=["*"]
            )
        )
        acknowledge(
            self.function.role or self.function,
            "AwsSolutions-IAM5[Resource::*]",
            f"{XRAY_REASON} The event source mappings (MSK, Amazon MQ, self-managed Kafka in a VPC) need "
            "ec2:CreateNetworkInterface, ec2:DeleteNetworkInterface and the ec2:Describe* actions on '*': Lambda "
            "creates their network interfaces in the source's subnets, whose ids only the service knows, and the "
            "Describe actions support no resource-level permissions.",
        )

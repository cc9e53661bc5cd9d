"""The send workers: one Lambda function per lane, all running the same code."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MailwrightConfig, WorkerResources, worker_environment
from mailwright.constants import SEND_WORKER_HANDLER


class SendWorkers(Construct):
    """One worker per lane (`functions`), each consuming only its own queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: MailwrightConfig,
        code: lambda_.Code,
        queues: Mapping[str, sqs.IQueue],
        resources: WorkerResources,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions: dict[str, lambda_.Function] = {}
        for name, lane in config.lanes.items():
            lane_id = name.capitalize()
            queue = queues[name]
            log_group = logs.LogGroup(self, f"{lane_id}Logs", retention=logs.RetentionDays.ONE_MONTH)
            function = lambda_.Function(
                self,
                f"{lane_id}Worker",
                description=f"mailwright send worker, {name} lane",
                code=code,
                handler=SEND_WORKER_HANDLER,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.ARM_64,
                timeout=Duration.seconds(lane.timeout_seconds),
                memory_size=lane.memory_mb,
                # A hard cap above the event source's MaximumConcurrency: it keeps a
                # lane from starving the others without making SQS overpull.
                reserved_concurrent_executions=lane.reserved_concurrency,
                log_group=log_group,
                environment=worker_environment(
                    config=config, lane=lane, queue_url=queue.queue_url, resources=resources
                ),
            )
            function.add_event_source(
                event_sources.SqsEventSource(
                    queue,
                    batch_size=lane.batch_size,
                    max_batching_window=(
                        Duration.seconds(lane.batching_window_seconds) if lane.batching_window_seconds else None
                    ),
                    # Only failed records go back to the queue, not the whole batch.
                    report_batch_item_failures=True,
                    max_concurrency=lane.max_concurrency,
                )
            )
            self.functions[name] = function

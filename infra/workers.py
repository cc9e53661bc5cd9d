"""The send workers: one Lambda function per lane, all running the same code."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import MailwrightConfig, WorkerResources, worker_environment
from infra.functions import python_function
from mailwright.constants import SEND_WORKER_HANDLER


class SendWorkers(Construct):
    """One worker per lane (`functions`), each consuming only its own queue through `event_sources`."""

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
        # Each lane's event source mapping: the reputation breaker switches the bulk lane's off and on.
        self.event_sources: dict[str, event_sources.SqsEventSource] = {}
        for name, lane in config.lanes.items():
            lane_id = name.capitalize()
            queue = queues[name]
            function = python_function(
                self,
                f"{lane_id}Worker",
                log_group_id=f"{lane_id}Logs",
                description=f"mailwright send worker, {name} lane",
                code=code,
                handler=SEND_WORKER_HANDLER,
                timeout=Duration.seconds(lane.timeout_seconds),
                memory_mb=lane.memory_mb,
                # A hard cap above the event source's MaximumConcurrency: it keeps a
                # lane from starving the others without making SQS overpull.
                reserved_concurrency=lane.reserved_concurrency,
                environment=worker_environment(
                    config=config, lane=lane, queue_url=queue.queue_url, resources=resources
                ),
            )
            source = event_sources.SqsEventSource(
                queue,
                batch_size=lane.batch_size,
                max_batching_window=(
                    Duration.seconds(lane.batching_window_seconds) if lane.batching_window_seconds else None
                ),
                # Only failed records go back to the queue, not the whole batch.
                report_batch_item_failures=True,
                max_concurrency=lane.max_concurrency,
            )
            function.add_event_source(source)
            self.functions[name] = function
            self.event_sources[name] = source

"""The local stack: moto on loopback, the stack's resources, and the functions running in-process.

    project = find_project()
    with LocalStack(LocalStackOptions(StateDir.resolve(), project.config(), templates_dir=project.templates)) as stack:
        print(stack.state["queues"]["standard"])   # a producer can publish here now
        stack.wait_until_drained(timeout=60)

Resources are created by `mailwright_tools.provision` from `infra.config`
(the settings the CDK app reads) and `mailwright.constants` (the names), so
lanes run locally as deployed: each lane's event source has its batch size,
batching window and maximum concurrency, each emulated container builds its
send service from the lane's environment (`worker_environment`), and the
queues carry the stack's visibility timeouts and redrive policies. The
event sources can be paused and resumed through a local Lambda API
(`lane_api`), by `mailwright lanes` and by the reputation breaker (`breaker`).

Unless `secondary` is off, a real SMTP server on loopback (`relay`) is the
secondary provider, configured as a deployed SMTP relay is (a `providers`
entry, its credentials in Secrets Manager), with cdk.json's `failover` per
lane; `mailwright local ses down|up` (`ses_outage`) makes SES fail as an
outage would, so the provider breakers, failover and restore run as deployed.

Everything lives in this process's memory: suppressions, preferences, the
message log and queued messages are gone when the stack stops.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import MailwrightConfig, lane_provider
from mailwright.constants import BREAKER_LANE, LANES, Env
from mailwright_tools.local import lane_api, moto_atomic, moto_speedups, ses_outage
from mailwright_tools.local.breaker import LocalBreaker, create_reputation_alarms
from mailwright_tools.local.event_source import EventSourceEmulator, EventSourceSettings, Handler
from mailwright_tools.local.hearing import LocalEvents
from mailwright_tools.local.mailbox import LocalMailbox, SesEventPublisher
from mailwright_tools.local.observability import WorkerOutput, quiet_third_party, unquiet_third_party
from mailwright_tools.local.outbox import Outbox
from mailwright_tools.local.rabbitmq import DEFAULT_QUEUE, RabbitMQEventSource, RabbitMQSourceSettings, redacted
from mailwright_tools.local.scheduler import LocalScheduler
from mailwright_tools.local.session import LocalSession
from mailwright_tools.project import SOURCE_CHECKOUT
from mailwright_tools.provision import FeedbackPath, StackResources, provision, provision_feedback
from mailwright_tools.queues import queues_empty
from mailwright_tools.state import StateDir

logger = logging.getLogger(__name__)

# SES publishes events asynchronously: the Send event about a second after SendEmail returned,
# the recipient server's verdict (Delivery, Bounce, then a Complaint) a little later.
SES_EVENT_DELAYS: dict[str, float] = {"Send": 1.0, "Delivery": 2.0, "Bounce": 2.0, "Complaint": 3.0}


@dataclass(frozen=True)
class LocalStackOptions:
    """How to run the local stack."""

    state: StateDir
    config: MailwrightConfig
    # The CLI passes its project's; tests and benchmarks use the checkout's.
    templates_dir: Path = SOURCE_CHECKOUT / "templates"
    host: str = "127.0.0.1"
    port: int = 0
    region: str = "us-east-1"
    # The SES account send rate the workers share; None keeps cdk.json's ses_max_send_rate.
    ses_rate: float | None = None
    serve_unsubscribe: bool = True
    # The HTTPS APIs on two more loopback ports: the IAM one unsigned (`status_api_url` in local.json) and the
    # producers' one with API keys and usage plans (`api_url`, and a key of the `local` producer, `api_key`).
    serve_api: bool = True
    # Write .mailwright/local.json so the CLI and other processes find the stack.
    record: bool = True
    # Seconds after a send at which SES publishes each event type (it does so asynchronously).
    ses_event_delays: dict[str, float] = dataclasses.field(default_factory=lambda: dict(SES_EVENT_DELAYS))
    # Run an SMTP server on loopback as the secondary provider (`--no-secondary`: SES alone).
    secondary: bool = True
    # A RabbitMQ broker (amqp://USER:PASS@HOST:PORT/VHOST) whose queue the ingest bridge drains, as the
    # deployed Amazon MQ mapping does; empty: no RabbitMQ door.
    rabbitmq_url: str = ""
    rabbitmq_queue: str = DEFAULT_QUEUE
    # The detail-types put on the bus; None keeps cdk.json's outcome_events.
    outcome_events: tuple[str, ...] | None = None
    # `--webhook URL`: endpoints local-1, local-2... for every published detail-type (loopback http allowed).
    webhooks: tuple[str, ...] = ()
    # `--digest-window SECONDS`: every digest template's window, so a digest can be tried in seconds.
    digest_window: int | None = None


def _check_port_free(host: str, port: int) -> None:
    """Raise OSError when `port` is taken: moto's server thread would die on it and leave start() waiting."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"port {port} on {host} is not free ({exc.strerror})") from None


class LocalStack:
    """Starts and stops the whole local stack; `state` is what `.mailwright/local.json` records."""

    def __init__(self, options: LocalStackOptions) -> None:
        if options.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local stack binds loopback only")
        self.options = options
        rate = options.ses_rate if options.ses_rate is not None else options.config.ses_max_send_rate
        self.config = dataclasses.replace(options.config, ses_max_send_rate=rate)
        self.state: dict[str, Any] = {}
        self.resources: StackResources | None = None
        self.emulators: dict[str, EventSourceEmulator] = {}
        self.mailbox: LocalMailbox | None = None
        self.outbox: Outbox | None = None
        self._server: Any = None
        self._unsubscribe_server: Any = None
        self._api_server: Any = None
        self._producer_api_server: Any = None
        self._lane_api: Any = None
        self.lambda_endpoint_url = ""
        self.breaker: LocalBreaker | None = None
        self.rabbitmq: RabbitMQEventSource | None = None
        self._events: SesEventPublisher | None = None
        # Outcome events, dead letters and webhooks (mailwright_tools.local.hearing).
        self.hearing: LocalEvents | None = None
        self._output: WorkerOutput | None = None
        self._log_handler: logging.Handler | None = None
        # The secondary provider, and the switch that takes SES down (`mailwright local ses down`).
        self.relay: Any = None
        self.ses_outage = ses_outage.SesOutage()
        self._ses_server: Any = None
        self.ses_control_url = ""
        # Scheduled sends' EventBridge schedules, run in-process (mailwright_tools.local.scheduler).
        self.schedulers: dict[str, LocalScheduler] = {}
        # Every emulated container's send service, closed at stop (an SMTP relay's pooled connections).
        self._services: list[Any] = []
        self._lock = threading.Lock()
        self._started = False
        self.endpoint_url = ""

    # -- lifecycle ------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> dict[str, Any]:
        """Start moto, provision, start the functions, record the stack; returns the recorded state."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self.state

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        moto_speedups.apply()
        moto_atomic.apply()

        paths = self.options.state
        paths.logs.mkdir(parents=True, exist_ok=True)
        self._log_handler = quiet_third_party(paths.logs / "local.log")
        if self.options.port:
            _check_port_free(self.options.host, self.options.port)
        self._server = ThreadedMotoServer(ip_address=self.options.host, port=self.options.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._started = True
        # moto keeps its state per process: start from nothing, whatever ran here before.
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback, our own server
            pass
        session = self.session()
        resources = provision(self.config, templates_dir=self.options.templates_dir, session=session)
        feedback = self._provision_feedback(session, resources)
        unsubscribe_url = self._serve_unsubscribe(resources) if self.options.serve_unsubscribe else ""
        if unsubscribe_url:
            resources = dataclasses.replace(resources, unsubscribe_base_url=unsubscribe_url)
        self.resources = resources
        self.schedulers = {
            lane: scheduler for lane in LANES if (scheduler := self._local_scheduler(session, resources, lane))
        }

        from mailwright.handlers import breaker as breaker_handler
        from mailwright.handlers import bridge as bridge_handler
        from mailwright.handlers import dead_letters, events_publisher, send_worker, webhooks
        from mailwright.handlers import feedback as feedback_handler

        self._output = WorkerOutput(
            paths.logs,
            handler_modules=[
                send_worker,
                feedback_handler,
                breaker_handler,
                bridge_handler,
                events_publisher,
                dead_letters,
                webhooks,
            ],
        )
        self.outbox = Outbox(paths.outbox)
        self.outbox.start()
        delays = self.options.ses_event_delays
        self._events = SesEventPublisher(session.client("sns"), feedback.topic_arn, delays=delays)
        self._events.start()
        self.mailbox = LocalMailbox(
            outbox=self.outbox,
            events=self._events,
            identity=resources.sender_identity or self.config.identity,
            region=self.options.region,
            event_types=self.config.published_event_types,
        )
        self._start_secondary(session)
        sqs = session.client("sqs")
        for lane in LANES:
            settings = self.config.lanes[lane]
            self.emulators[lane] = EventSourceEmulator(
                name=f"mailwright-{lane}-worker",
                sqs=sqs,
                queue_url=resources.queues[lane],
                settings=EventSourceSettings(
                    batch_size=settings.batch_size,
                    batching_window_seconds=settings.batching_window_seconds,
                    max_concurrency=settings.max_concurrency,
                    timeout_seconds=settings.timeout_seconds,
                ),
                handler_factory=self._send_handler_factory(lane),
                region=self.options.region,
            )
        self.emulators["feedback"] = EventSourceEmulator(
            name="mailwright-feedback-worker",
            sqs=sqs,
            queue_url=feedback.queue_url,
            settings=EventSourceSettings(
                batch_size=feedback.batch_size,
                batching_window_seconds=feedback.batching_window_seconds,
                max_concurrency=feedback.max_concurrency,
                timeout_seconds=feedback.timeout_seconds,
            ),
            handler_factory=self._feedback_handler_factory(feedback_handler, feedback.environment),
            region=self.options.region,
        )
        self._lane_api, self.lambda_endpoint_url = lane_api.start(
            self.emulators, region=self.options.region, host=self.options.host
        )
        self._ses_server, self.ses_control_url = ses_outage.start(self.ses_outage, host=self.options.host)
        alarm_names = create_reputation_alarms(session.client("cloudwatch"), self.config.stack_name)
        self.breaker = LocalBreaker(
            config=self.config,
            session=self.session(),
            mapping_id=self.emulators[BREAKER_LANE].uuid,
            alarm_names=alarm_names,
            region=self.options.region,
            publish=lambda outcome: self._publish_breaker_outcome(breaker_handler, outcome),
        )
        if self.options.rabbitmq_url:
            self.rabbitmq = RabbitMQEventSource(
                name="mailwright-bridge",
                settings=self._rabbitmq_settings(),
                handler_factory=self._bridge_handler_factory(bridge_handler, resources),
            )
        self.hearing = LocalEvents(
            config=self.config,
            resources=resources,
            session_factory=self.session,
            metrics=self._output.metrics,
            region=self.options.region,
            detail_types=self.options.outcome_events,
            webhook_urls=self.options.webhooks,
        )
        self.state = {**self._describe(resources, feedback, unsubscribe_url), **self.hearing.describe()}
        if self.options.serve_api:
            self.state.update(self._serve_api(resources))
        for emulator in self.emulators.values():
            emulator.start()
        self.hearing.start()
        self.breaker.start()
        if self.rabbitmq is not None:
            self.rabbitmq.start()  # connects first: a broker that cannot be reached stops `local up` here
        if self.options.record:
            paths.write_local(self.state)

    def stop(self) -> None:
        """Stop everything that was started, in reverse order; safe to call twice."""
        with self._lock:
            if not self._started and self._server is None:
                return
            self._started = False
        if self.breaker is not None:
            self.breaker.stop()
        for scheduler in self.schedulers.values():
            scheduler.stop()
        if self.rabbitmq is not None:
            self.rabbitmq.stop()
        for emulator in self.emulators.values():
            emulator.stop()
        with self._lock:
            services, self._services = self._services, []
        for service in services:
            service.close()
        if self.hearing is not None:
            self.hearing.stop()
        if self._lane_api is not None:
            self._lane_api.shutdown()
            self._lane_api.server_close()
            self._lane_api = None
        if self._ses_server is not None:
            self._ses_server.shutdown()
            self._ses_server.server_close()
            self._ses_server = None
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
        if self._events is not None:
            self._events.close()
        if self.outbox is not None:
            self.outbox.close()
        if self._unsubscribe_server is not None:
            self._unsubscribe_server.shutdown()
            self._unsubscribe_server.server_close()
            self._unsubscribe_server = None
        for server in (self._api_server, self._producer_api_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._api_server = self._producer_api_server = None
        if self.options.record:
            self.options.state.clear_local(pid=os.getpid())
        if self._output is not None:
            self._output.restore()
            self._output = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._log_handler is not None:
            unquiet_third_party(self._log_handler)
            self._log_handler = None

    # -- wiring ---------------------------------------------------------

    def session(self) -> LocalSession:
        """A fresh boto3 session on the local endpoint (one per emulated container, as in Lambda).

        Its SES calls obey the outage switch (`mailwright local ses down|up`).
        """
        endpoints = {"lambda": self.lambda_endpoint_url} if self.lambda_endpoint_url else None
        session = LocalSession(self.endpoint_url, self.options.region, service_endpoints=endpoints)
        self.ses_outage.install(session)
        return session

    def _start_secondary(self, session: LocalSession) -> None:
        """Start the loopback relay and configure it as the secondary, or run SES alone (`secondary` off).

        The relay replaces cdk.json's providers (a deployed SendGrid cannot be reached from here); each
        lane keeps cdk.json's `failover`, pointed at the relay.
        """
        import json

        from mailwright_tools.local.relay import LocalRelay, local_relay_provider

        assert self.outbox is not None and self.resources is not None
        if not self.options.secondary:
            self.config = dataclasses.replace(self.config, providers=())
            return
        self.relay = LocalRelay(self.outbox, host=self.options.host)
        self.relay.start()
        secret_arn = session.client("secretsmanager").create_secret(
            Name=f"mailwright/providers/{self.relay.name}", SecretString=json.dumps(self.relay.credentials)
        )["ARN"]
        provider = local_relay_provider(host=self.options.host, port=self.relay.port, secret_arn=secret_arn)
        failover = {lane: dataclasses.replace(f, provider="") for lane, f in self.config.failover.items()}
        self.config = dataclasses.replace(self.config, providers=(provider,), failover=failover)
        self.resources = dataclasses.replace(self.resources, provider_secrets={provider.name: secret_arn})

    def _publish_breaker_outcome(self, module: Any, outcome: Any) -> None:
        """What the breaker function does with an outcome (log and count it), flushed as its invocation ends."""
        assert self._output is not None
        try:
            module.publish(outcome)
        finally:
            self._output.metrics.flush()

    def lane_environment(self, lane: str) -> dict[str, str]:
        """The environment of a lane's worker, exactly as the CDK app computes it for the deployed function."""
        assert self.resources is not None
        env = self.resources.worker_environment(self.config, lane)
        if self.resources.unsubscribe_base_url.startswith("http://127."):
            # Serve links from the local endpoint even when the settings name a production domain.
            env[Env.UNSUBSCRIBE_BASE_URL] = self.resources.unsubscribe_base_url
        if self.options.digest_window is not None:
            env[Env.DIGEST_WINDOW_SECONDS] = str(self.options.digest_window)
        return env

    def _local_scheduler(self, session: Any, resources: StackResources, lane: str) -> LocalScheduler | None:
        """A lane's schedules, kept in moto and run by in-process timers onto the lane's queue."""
        from mailwright.adapters.scheduler import ScheduleTarget

        if not resources.schedule_settings:
            return None
        found = resources.schedule_settings
        target = ScheduleTarget(
            group=found["group"],
            role_arn=found["role_arn"],
            queue_arn=found[f"queue_arn_{lane}"],
            dead_letter_arn=found["dead_letter_arn"],
            kms_key_arn=found["kms_key_arn"],
        )
        return LocalScheduler(
            scheduler_client=lambda: session.client("scheduler"),
            sqs_client=lambda: session.client("sqs"),
            group=found["group"],
            target=target,
        )

    def _send_handler_factory(self, lane: str) -> Callable[[], Handler]:
        from aws_lambda_powertools.utilities.data_classes import SQSEvent

        from mailwright.handlers import send_worker
        from mailwright.observability import ProviderMetrics
        from mailwright.settings import WorkerSettings
        from mailwright.wiring import build_send_service
        from mailwright_tools.fakes import FakeAccountReader

        # Parsed now, so a bad setting stops `local up` instead of the first batch.
        settings = WorkerSettings.from_env(self.lane_environment(lane))
        assert self.mailbox is not None and self._output is not None
        mailbox, output = self.mailbox, self._output

        def cold_start() -> Handler:
            # moto has no SES GetAccount: the account allows what the settings say (cdk.json's rate).
            account = FakeAccountReader(self.config.ses_max_send_rate or 1.0)
            service = build_send_service(
                settings,
                session=self.session(),
                wrap_sender=mailbox.wrap,
                account_reader=account,
                provider_events=ProviderMetrics(sink=output.metrics.write_document),
                scheduler=self.schedulers.get(lane),
            )
            with self._lock:
                self._services.append(service)

            def invoke(event: dict[str, Any], context: Any) -> Any:
                try:
                    return send_worker.handle_batch(service, SQSEvent(event), context)
                finally:
                    output.metrics.flush()  # what @metrics.log_metrics does at the end of an invocation

            return invoke

        return cold_start

    def _feedback_handler_factory(self, module: Any, environment: dict[str, str]) -> Callable[[], Handler]:
        from aws_lambda_powertools.utilities.data_classes import SQSEvent

        from mailwright.settings import FeedbackSettings
        from mailwright.wiring import build_feedback_service

        settings = FeedbackSettings.from_env(environment)
        assert self._output is not None
        output = self._output

        def cold_start() -> Handler:
            service = build_feedback_service(settings, session=self.session())

            def invoke(event: dict[str, Any], context: Any) -> Any:
                try:
                    return module.handle_batch(service, SQSEvent(event), context)
                finally:
                    output.metrics.flush()

            return invoke

        return cold_start

    def _rabbitmq_settings(self) -> RabbitMQSourceSettings:
        """The emulated Amazon MQ mapping: cdk.json's ingest.rabbitmq batching when set, else Lambda's defaults."""
        deployed = self.config.ingest.rabbitmq
        batching = (
            {"batch_size": deployed.batch_size, "batching_window_seconds": deployed.batching_window_seconds}
            if deployed is not None
            else {}
        )
        return RabbitMQSourceSettings(url=self.options.rabbitmq_url, queue=self.options.rabbitmq_queue, **batching)

    def _bridge_handler_factory(self, module: Any, resources: StackResources) -> Callable[[], Handler]:
        from infra.config import bridge_environment
        from mailwright.settings import BridgeSettings
        from mailwright.wiring import build_bridge

        # The environment the CDK app gives the deployed bridge, parsed now so a bad one stops `local up`.
        settings = BridgeSettings.from_env(
            bridge_environment(
                config=self.config,
                queue_urls=dict(resources.queues),
                templates_bucket=resources.templates_bucket,
                messages_table=resources.messages_table,
            )
        )
        assert self._output is not None
        output = self._output

        def cold_start() -> Handler:
            service = build_bridge(settings, session=self.session())

            def invoke(event: dict[str, Any], context: Any) -> Any:
                try:
                    return module.handle_event(service, event)
                finally:
                    output.metrics.flush()

            return invoke

        return cold_start

    def _serve_unsubscribe(self, resources: StackResources) -> str:
        """Serve the unsubscribe endpoint on a free loopback port, as its function URL would; its base URL."""
        from infra.config import unsubscribe_environment
        from mailwright.settings import UnsubscribeSettings
        from mailwright.wiring import build_unsubscribe_service
        from mailwright_tools import unsubscribe_server

        environment = unsubscribe_environment(
            preferences_table=resources.preferences_table,
            unsubscribe_secret_arn=resources.unsubscribe_secret_arn,
            address_key_secret_arn=resources.address_key_secret_arn,
            suppression_table=resources.suppression_table,
        )
        service = build_unsubscribe_service(UnsubscribeSettings.from_env(environment), session=self.session())
        self._unsubscribe_server, base_url = unsubscribe_server.start(service, host=self.options.host, port=0)
        return base_url

    def _serve_api(self, resources: StackResources) -> dict[str, Any]:
        """Serve the HTTPS APIs' function on two free loopback ports, as API Gateway would; what local.json records.

        One container serves both: the IAM API (unsigned here) and the producers' API (API keys, usage plans).
        The `local` producer gets a key, issued as `mailwright producers add local` would.
        """
        from infra.config import LOCAL_PRODUCER, api_environment, local_producers, submission_environment
        from mailwright.adapters.producers import DynamoProducerDirectory
        from mailwright.settings import ApiSettings, SubmissionSettings
        from mailwright.wiring import build_api_services
        from mailwright_tools.local import api_server
        from mailwright_tools.local.usage_plans import UsagePlanGate
        from mailwright_tools.producers import ProducerAdmin, ProducerTarget
        from mailwright_tools.provision_producers import provision_producers

        session = self.session()
        producers = provision_producers(
            local_producers(self.config), stack_name=self.config.stack_name, session=session
        )
        environment = {
            **api_environment(
                messages_table=resources.messages_table,
                address_key_secret_arn=resources.address_key_secret_arn,
                suppression_table=resources.suppression_table,
            ),
            **submission_environment(
                lane_queue_urls=resources.queues,
                templates_bucket=resources.templates_bucket,
                producers_table=producers.table,
                template_cache_seconds=self.config.template_cache_seconds,
            ),
            # Cancels (scheduled sends), as the CDK app adds them to the deployed function.
            Env.IDEMPOTENCY_TABLE: resources.idempotency_table,
            Env.SCHEDULE_GROUP: resources.schedule_group,
            # Preferences (GET|PATCH /v1/users/{user_id}/preferences), as the CDK app adds them.
            Env.PREFERENCES_TABLE: resources.preferences_table,
        }
        services = build_api_services(
            ApiSettings.from_env(environment), SubmissionSettings.from_env(environment), session=session
        )
        self._api_server, status_url = api_server.start(services, host=self.options.host, port=0)
        gate = UsagePlanGate(
            session.client("apigateway"),
            plan_ids=list(producers.plans.values()),
            directory=DynamoProducerDirectory(session.client("dynamodb"), producers.table, cache_seconds=1.0),
        )
        self._producer_api_server, api_url = api_server.start(services, host=self.options.host, port=0, gate=gate)
        target = ProducerTarget(
            stack_name=self.config.stack_name,
            plans=producers.plans,
            table=producers.table,
            retirement_role_arn=producers.retirement_role_arn,
            api_url=api_url,
        )
        admin = ProducerAdmin(
            target,
            apigateway=session.client("apigateway"),
            dynamodb=session.client("dynamodb"),
            scheduler=session.client("scheduler"),
        )
        issued = admin.add(LOCAL_PRODUCER)
        return {
            "status_api_url": status_url,
            "api_url": api_url,
            # The local producer's key: a secret on a deployed stack, shown once; here, for local use only.
            "api_key": issued.value,
            "api_producer": LOCAL_PRODUCER,
            "producer_api": {
                "url": api_url,
                "api_id": producers.api_id,
                "table": producers.table,
                "plans": producers.plans,
                "retirement_role_arn": producers.retirement_role_arn,
            },
        }

    def _provision_feedback(self, session: LocalSession, resources: StackResources) -> FeedbackPath:
        """The SES events topic, the feedback queue (+DLQ) and the feedback function's environment."""
        path = provision_feedback(self.config, resources, session=session)
        # moto has no SES account suppression list to mirror to.
        path.environment[Env.MIRROR_SES_SUPPRESSION] = "false"
        return path

    # -- observation ----------------------------------------------------

    def _describe(self, resources: StackResources, feedback: FeedbackPath, unsubscribe_url: str) -> dict[str, Any]:
        paths = self.options.state
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.options.region,
            "pid": os.getpid(),
            "started_at": time.time(),
            "stack_name": self.config.stack_name,
            "queues": dict(resources.queues),
            "dlqs": dict(resources.dlqs),
            "event_bus": resources.event_bus,
            "ingest_dlq": resources.ingest_dlq,
            "tables": {
                "preferences": resources.preferences_table,
                "suppression": resources.suppression_table,
                "idempotency": resources.idempotency_table,
                "messages": resources.messages_table,
            },
            "templates_bucket": resources.templates_bucket,
            # Scheduled sends: the schedules run in-process (mailwright_tools.local.scheduler), kept in moto.
            "schedule_group": resources.schedule_group,
            "schedule_dlq": resources.schedule_settings.get("dead_letter_url", ""),
            "configuration_set": resources.configuration_set,
            "sender": self.config.from_address,
            "unsubscribe_secret_arn": resources.unsubscribe_secret_arn,
            "address_key_secret_arn": resources.address_key_secret_arn,
            "unsubscribe_url": unsubscribe_url,
            "feedback_topic_arn": feedback.topic_arn,
            "feedback_queue": feedback.queue_url,
            "feedback_dlq": feedback.dlq_url,
            # The lanes' event source mappings, served through the Lambda API (`mailwright lanes`).
            "lambda_endpoint_url": self.lambda_endpoint_url,
            "functions": {lane: self.emulators[lane].name for lane in LANES},
            "event_source_mappings": {lane: self.emulators[lane].uuid for lane in LANES},
            "reputation_alarms": list(self.breaker.alarm_names) if self.breaker else [],
            # The RabbitMQ door, when on: the broker (password left out) and the queue the bridge drains.
            "rabbitmq": (
                {"url": redacted(self.options.rabbitmq_url), "queue": self.options.rabbitmq_queue}
                if self.options.rabbitmq_url
                else None
            ),
            "ses_max_send_rate": self.config.ses_max_send_rate,
            # Secondary providers (the loopback relay), each lane's failover, and the SES outage switch.
            "providers": [{"name": p.name, "kind": p.kind} for p in self.config.providers],
            "failover": {
                lane: {"enabled": self.config.failover[lane].enabled, "provider": provider.name}
                for lane in LANES
                if (provider := lane_provider(self.config, lane)) is not None
            },
            "secondary_smtp": f"{self.relay.host}:{self.relay.port}" if self.relay is not None else "",
            "ses_control_url": self.ses_control_url,
            "outbox": str(paths.outbox),
            "logs": str(paths.logs),
        }

    def queue_urls(self) -> list[str]:
        """Every queue the functions drain (lanes, then feedback)."""
        urls = list(self.state.get("queues", {}).values())
        if self.state.get("feedback_queue"):
            urls.append(self.state["feedback_queue"])
        return urls

    def drained(self, sqs: Any | None = None) -> bool:
        """Whether nothing is queued, in flight, being processed or waiting to be published."""
        if not all(emulator.idle for emulator in self.emulators.values()):
            return False
        if self.mailbox is not None and not self.mailbox.idle:
            return False
        if self.rabbitmq is not None and not self.rabbitmq.idle:
            return False
        sqs = sqs or self.session().client("sqs")
        if self.hearing is not None and not self.hearing.idle(sqs):
            return False
        # Feedback for a request not logged yet is failed on purpose and comes back after the
        # feedback queue's visibility timeout: that wait is not work in progress.
        deferred_ok = [self.state["feedback_queue"]] if self.state.get("feedback_queue") else []
        return queues_empty(sqs, self.queue_urls(), waiting_ok=deferred_ok)

    def wait_until_drained(self, *, timeout: float, poll: float = 0.25) -> bool:
        """Block until `drained()` holds twice in a row (False on timeout)."""
        sqs = self.session().client("sqs")
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            streak = streak + 1 if self.drained(sqs) else 0
            if streak >= 2:
                return True
            time.sleep(poll)
        return False

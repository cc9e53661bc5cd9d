"""The local stack's way of telling producers what happened: outcome events, EmailFailed, webhooks.

`LocalEvents` provisions them (mailwright_tools.provision_events) and runs
their functions in-process, as deployed: the events publisher on the message
log's stream (a StreamSourceEmulator), the dead-letter function on every DLQ
and the webhook sender on every endpoint's queue (EventSourceEmulators).
`mailwright local up --webhook URL` registers endpoints `local-1`,
`local-2`... for every published detail-type; their `whsec_` secrets go to
`.mailwright/local.json` (`webhook_secrets`, and `webhook_secret` when
there is one endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from infra.config import MailwrightConfig
from infra.events_config import (
    DEAD_LETTER_BATCH_SIZE,
    DEAD_LETTER_TIMEOUT_SECONDS,
    PUBLISHER_BATCH_SIZE,
    PUBLISHER_BATCHING_WINDOW_SECONDS,
    PUBLISHER_TIMEOUT_SECONDS,
    WEBHOOK_BATCH_SIZE,
    WEBHOOK_TIMEOUT_SECONDS,
    EventsConfigError,
    WebhookConfig,
    check_endpoint_url,
)
from mailwright_tools.local.event_source import EventSourceEmulator, EventSourceSettings, Handler
from mailwright_tools.local.observability import ContainerMetrics
from mailwright_tools.local.stream_source import StreamSourceEmulator
from mailwright_tools.provision import StackResources
from mailwright_tools.provision_events import LOCAL_WEBHOOK_RETRY, EventsPath, provision_events
from mailwright_tools.queues import queues_empty


def local_webhooks(urls: Sequence[str], detail_types: Sequence[str]) -> tuple[WebhookConfig, ...]:
    """`--webhook URL` endpoints, named local-1, local-2...: every published detail-type; loopback http allowed."""
    hooks = []
    for index, url in enumerate(urls, start=1):
        try:
            check_endpoint_url(url, where=f"--webhook {url}", allow_loopback=True)
        except EventsConfigError as exc:
            raise ValueError(str(exc)) from None
        hooks.append(WebhookConfig(name=f"local-{index}", url=url, detail_types=tuple(detail_types)))
    return tuple(hooks)


class LocalEvents:
    """Outcome events, dead letters and webhooks of one local stack: provisioned, run, described."""

    def __init__(
        self,
        *,
        config: MailwrightConfig,
        resources: StackResources,
        session_factory: Callable[[], Any],
        metrics: ContainerMetrics,
        region: str,
        detail_types: Sequence[str] | None = None,
        webhook_urls: Sequence[str] = (),
    ) -> None:
        self._session = session_factory
        self._metrics = metrics
        published = tuple(detail_types if detail_types is not None else config.events.outcome_events)
        hooks = local_webhooks(webhook_urls, published)
        self.path: EventsPath = provision_events(
            config, resources, session=session_factory(), detail_types=published, webhooks=hooks
        )
        session = session_factory()
        sqs = session.client("sqs")
        self.publisher = StreamSourceEmulator(
            name="mailwright-events-publisher",
            streams=session.client("dynamodbstreams"),
            stream_arn=self.path.stream_arn,
            handler_factory=self._publisher_factory(),
            batch_size=PUBLISHER_BATCH_SIZE,
            batching_window_seconds=PUBLISHER_BATCHING_WINDOW_SECONDS,
            timeout_seconds=PUBLISHER_TIMEOUT_SECONDS,
        )
        self.emulators: dict[str, EventSourceEmulator] = {}
        for name, url in self.path.dead_letter_queues.items():
            self.emulators[f"dead-letters-{name}"] = EventSourceEmulator(
                name=f"mailwright-dead-letters-{name}",
                sqs=sqs,
                queue_url=url,
                settings=EventSourceSettings(
                    batch_size=DEAD_LETTER_BATCH_SIZE,
                    batching_window_seconds=0,
                    max_concurrency=1,
                    timeout_seconds=DEAD_LETTER_TIMEOUT_SECONDS,
                ),
                handler_factory=self._dead_letter_factory(),
                region=region,
            )
        for hook in self.path.webhooks:
            self.emulators[f"webhook-{hook.name}"] = EventSourceEmulator(
                name=f"mailwright-webhook-{hook.name}",
                sqs=sqs,
                queue_url=hook.queue_url,
                settings=EventSourceSettings(
                    batch_size=WEBHOOK_BATCH_SIZE,
                    batching_window_seconds=0,
                    max_concurrency=2,
                    timeout_seconds=WEBHOOK_TIMEOUT_SECONDS,
                ),
                handler_factory=self._webhook_factory(),
                region=region,
            )

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start reading the stream and draining the queues."""
        self.publisher.start()
        for emulator in self.emulators.values():
            emulator.start()

    def stop(self) -> None:
        """Stop them, finishing what is in hand."""
        for emulator in self.emulators.values():
            emulator.stop()
        self.publisher.stop()

    def idle(self, sqs: Any) -> bool:
        """Whether the stream is read to its end and the DLQs drained (retries waiting in a webhook queue are fine)."""
        if not self.publisher.idle or not all(emulator.idle for emulator in self.emulators.values()):
            return False
        webhook_queues = [hook.queue_url for hook in self.path.webhooks]
        dead_letters = list(self.path.dead_letter_queues.values())
        return queues_empty(sqs, [*dead_letters, *webhook_queues], waiting_ok=webhook_queues)

    def describe(self) -> dict[str, Any]:
        """What local.json records: the published types, parked queues and webhooks (with their secrets)."""
        state: dict[str, Any] = {
            "outcome_events": list(self.path.detail_types),
            "parked_dlqs": dict(self.path.parked),
            "webhook_state_table": self.path.state_table,
            "webhook_archive_bucket": self.path.archive_bucket,
            "webhooks": {hook.name: hook.to_json() for hook in self.path.webhooks},
            "webhook_retry": {
                "base_seconds": LOCAL_WEBHOOK_RETRY.base_seconds,
                "cap_seconds": LOCAL_WEBHOOK_RETRY.cap_seconds,
                "window_seconds": LOCAL_WEBHOOK_RETRY.window_seconds,
            },
            "webhook_secrets": {hook.name: hook.secret for hook in self.path.webhooks},
        }
        if len(self.path.webhooks) == 1:
            state["webhook_secret"] = self.path.webhooks[0].secret
        return state

    # -- the functions ------------------------------------------------------------------------------------------

    def _invoker(self, run: Callable[[dict[str, Any]], Any]) -> Handler:
        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return run(event)
            finally:
                self._metrics.flush()  # what @metrics.log_metrics does at the end of an invocation

        return invoke

    def _publisher_factory(self) -> Callable[[], Handler]:
        from mailwright.event_settings import PublisherSettings
        from mailwright.event_wiring import build_event_publisher
        from mailwright.handlers import events_publisher

        settings = PublisherSettings.from_env(self.path.publisher_environment)

        def cold_start() -> Handler:
            service = build_event_publisher(settings, session=self._session())
            return self._invoker(lambda event: events_publisher.handle_batch(service, event))

        return cold_start

    def _dead_letter_factory(self) -> Callable[[], Handler]:
        from aws_lambda_powertools.utilities.data_classes import SQSEvent

        from mailwright.event_settings import DeadLetterSettings
        from mailwright.event_wiring import build_dead_letter_service
        from mailwright.handlers import dead_letters

        settings = DeadLetterSettings.from_env(self.path.dead_letter_environment)

        def cold_start() -> Handler:
            service = build_dead_letter_service(settings, session=self._session())
            return self._invoker(lambda event: dead_letters.handle_batch(service, SQSEvent(event)))

        return cold_start

    def _webhook_factory(self) -> Callable[[], Handler]:
        from aws_lambda_powertools.utilities.data_classes import SQSEvent

        from mailwright.event_settings import WebhookSettings
        from mailwright.event_wiring import build_webhook_service
        from mailwright.handlers import webhooks

        settings = WebhookSettings.from_env(self.path.webhook_environment)

        def cold_start() -> Handler:
            service = build_webhook_service(settings, session=self._session())
            return self._invoker(lambda event: webhooks.handle_batch(service, SQSEvent(event)))

        return cold_start

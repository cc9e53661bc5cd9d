"""moto 5.2 inefficiencies that dominate the local stack's CPU, replaced by equivalent code.

The local stack runs moto and the functions in one process, so moto's time per
request decides how fast a demo drains. Both replacements compute exactly what
moto computes; they only stop redoing work:

* the server's dispatcher lists moto's package directory (a listdir and a
  stat per entry) on every request, to match the request's host against the
  module names; the list cannot change while the process runs, so it is kept;
* ReceiveMessage checks each returned message against the queue's retention
  period through `get_queue_attributes`, which builds every attribute of the
  queue three times over, each build counting all its messages (three scans);
  with a thousand queued messages that is about 70 ms per receive. The
  retention period is read from the queue directly instead;
* those scans (and the visible-messages list every receive and every
  SendMessage's attribute lookup builds) read the clock once per message;
  they read it once per scan instead;
* SendMessage (and each entry of SendMessageBatch) builds every attribute of
  the queue, three scans of all its messages, only to read
  `ContentBasedDeduplication`, which only a FIFO queue has: a bulk send of
  50,000 rows scanned the queue 150,000 times. For a standard queue the
  attributes read while sending are now empty, which is what that lookup
  found there anyway.

With these, a 1000-request demo needs less than half the CPU time.
"""

from __future__ import annotations

import threading
from typing import Any

_APPLIED = "mailwright_speedup"
# Set while SQSBackend.send_message runs in this thread.
_sending = threading.local()


def apply() -> None:
    """Install the replacements (once per process)."""
    from moto import backends
    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs.models import Queue, SQSBackend

    if not getattr(backends.list_of_moto_modules, _APPLIED, False):
        modules = tuple(backends.list_of_moto_modules())

        def list_of_moto_modules() -> tuple[str, ...]:
            return modules

        setattr(list_of_moto_modules, _APPLIED, True)
        backends.list_of_moto_modules = list_of_moto_modules

    if not getattr(SQSBackend.is_message_valid_based_on_retention_period, _APPLIED, False):

        def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
            retention_period = int(self.get_queue(queue_name).message_retention_period)
            return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

        setattr(is_message_valid_based_on_retention_period, _APPLIED, True)
        SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]

    if not getattr(getattr(Queue.__dict__["messages"], "fget", None), _APPLIED, False):

        def messages(self: Any) -> list[Any]:
            now = unix_time_millis()
            return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

        def approximate_number_of_messages_delayed(self: Any) -> int:
            now = unix_time_millis()
            return sum(1 for m in self._messages if now < m.delayed_until)

        def approximate_number_of_messages_not_visible(self: Any) -> int:
            now = unix_time_millis()
            return sum(1 for m in self._messages if not now > m.visible_at)

        def approximate_number_of_messages(self: Any) -> int:
            return len(self.messages)

        for function in (
            messages,
            approximate_number_of_messages_delayed,
            approximate_number_of_messages_not_visible,
            approximate_number_of_messages,
        ):
            setattr(function, _APPLIED, True)
            setattr(Queue, function.__name__, property(function))

    if not getattr(SQSBackend.send_message, _APPLIED, False):
        full_attributes = Queue.__dict__["attributes"].fget
        original_send = SQSBackend.send_message

        def attributes(self: Any) -> dict[str, Any]:
            if getattr(_sending, "active", False) and not self.fifo_queue:
                # A standard queue has no FIFO attributes, the only ones sending reads.
                return {}
            return dict(full_attributes(self))

        def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
            _sending.active = True
            try:
                return original_send(self, *args, **kwargs)
            finally:
                _sending.active = False

        for replacement in (attributes, send_message):
            setattr(replacement, _APPLIED, True)
        Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
        SQSBackend.send_message = send_message  # type: ignore[method-assign]

"""Chaos check of scheduled sends: worker crashes, duplicate deliveries and failing stores, on a simulated queue.

A small discrete-time queue stands in for SQS (visibility, delays, redelivery
after a failed or lost batch) and FakeScheduler's `fire` for EventBridge
Scheduler. Batches are lost whole (the worker crashed after its work, before
answering), delivered twice, or meet injected failures of the schedule store,
the scheduler and the message log. Whatever happens: every scheduled request
is sent exactly once and not before its send_at, every cancelled one never,
and no schedule is left behind. Runs in about a second (fake clock).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from mailwright.request import parse_request
from mailwright.scheduling import ScheduleDesk
from mailwright_tools.fakes import FakeClock, build_fake_service, queue_record

from .test_scheduling import NOW, request

VISIBILITY = 30.0
STEP = 5.0


@dataclass
class Message:
    body: str
    visible_at: float
    message_id: str
    published_at: float
    deferrals: int = 0
    receives: int = 0


def test_scheduled_requests_survive_crashes_duplicates_and_failures() -> None:
    rng = random.Random(17)
    clock = FakeClock(start=NOW)
    send, world = build_fake_service(clock=clock, rng=random.Random(1))
    assert world.schedules is not None and world.scheduler is not None
    desk = ScheduleDesk(store=world.schedules, scheduler=world.scheduler, clock=clock)
    # Short (an SQS delay) and long (a schedule) ones, and some cancelled halfway.
    aheads = [rng.choice([20, 200, 800, 1800, 5000]) for _ in range(60)]
    bodies = [request(f"chaos-{i}", ahead=ahead) for i, ahead in enumerate(aheads)]
    send_at = {parse_request(b).request_id: NOW + a for b, a in zip(bodies, aheads, strict=True)}
    cancelled = set(list(send_at)[::7])
    queue = [Message(json.dumps(b), NOW, f"m{i}", NOW) for i, b in enumerate(bodies)]
    sent_at: dict[str, list[float]] = {}
    counter, crashes, duplicates, cancels_done = 0, 0, 0, False

    end = NOW + 7000
    while clock() < end:
        now = clock()
        if now >= NOW + 10 and not cancels_done:
            for request_id in cancelled:
                assert desk.cancel(request_id).changed
            cancels_done = True
        for body in world.scheduler.fire(now):  # EventBridge puts the body on the lane queue
            counter += 1
            queue.append(Message(body, now, f"s{counter}", now))
        due = [m for m in queue if m.visible_at <= now][:10]
        if due:
            for message in due:
                message.receives += 1
                message.visible_at = now + VISIBILITY
            # Injected faults for this batch only.
            world.schedules.failures.clear()
            world.scheduler.failures.clear()
            world.message_log.failures.clear()
            fault = rng.random()
            if fault < 0.1:
                world.schedules.failures["read"] = RuntimeError("store down")
            elif fault < 0.2:
                world.scheduler.failures["create"] = RuntimeError("scheduler down")
            elif fault < 0.25:
                world.message_log.failures["record"] = RuntimeError("log down")
            records = [
                queue_record(m.body, message_id=m.message_id, receive_count=m.receives, sent_at=m.published_at)
                for m in due
            ]
            before = len(world.sender.sent)
            report = send.process(records)
            for email in world.sender.sent[before:]:
                request_id = dict(email.tags)["request_id"]
                sent_at.setdefault(request_id, []).append(clock())
            crashed = rng.random() < 0.2  # the worker died before answering: the whole batch comes back
            duplicated = rng.random() < 0.2  # SQS delivered the batch twice
            crashes, duplicates = crashes + crashed, duplicates + duplicated
            for message in due:
                if crashed or message.message_id in report.failed:
                    continue  # visible again after its visibility timeout
                queue.remove(message)
            for deferral in world.deferrals.deferred:
                counter += 1
                queue.append(Message(deferral.body, now + deferral.seconds, f"d{counter}", NOW, deferral.deferrals))
            world.deferrals.deferred.clear()
            if duplicated:
                for message in due:
                    counter += 1
                    queue.append(Message(message.body, now, f"x{counter}", message.published_at))
        clock.advance(STEP)

    lost = set(send_at) - cancelled - set(sent_at)
    assert not lost, f"never sent: {sorted(lost)}"
    twice = {rid: times for rid, times in sent_at.items() if len(times) > 1}
    assert not twice, f"sent twice: {twice}"
    assert not set(sent_at) & cancelled
    early = {rid: times[0] for rid, times in sent_at.items() if times[0] < send_at[rid]}
    assert not early, f"sent before send_at: { {r: datetime.fromtimestamp(t, UTC) for r, t in early.items()} }"
    assert world.scheduler.schedules == {}
    # What is left in the queue are copies of requests already sent or cancelled (dropped when received).
    assert {parse_request(m.body).request_id for m in queue} <= cancelled | set(sent_at)
    # The run did meet what it claims to survive.
    assert crashes >= 3 and duplicates >= 3 and len(world.scheduler.created) >= 10
    assert world.deferrals.calls["defer"] >= 5

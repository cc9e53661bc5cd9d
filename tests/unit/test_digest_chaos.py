"""Chaos for digests: crashes after a fold, lost flushes, unwritable outcomes and duplicate deliveries.

A small queue simulation over the fakes (injected clock, no sleeps): requests
for a few users are delivered in random batches, some twice; the worker
"crashes" at random right after a fold was written, the deferral port refuses
flush messages at random, and the message log refuses writes at random. In
the end every folded request is listed in exactly one sent digest, its log
names that digest, and no digest email went out twice.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from mailwright.errors import TransientError
from mailwright.ports import Deferral, Outcome
from mailwright.request import parse_request
from mailwright.sending import QueueRecord
from mailwright_tools.fakes import FakeClock, FakeDeferrals, FakeDigestStore, FakeMessageLog, build_fake_service

USERS = 4
REQUESTS = 60


class CrashingDigests(FakeDigestStore):
    """Writes the fold, then sometimes dies before the worker hears of it."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng
        self.crashes = 0

    def fold(self, key: str, item: Any, **kwargs: Any) -> Any:
        folded = super().fold(key, item, **kwargs)
        if self.rng.random() < 0.15:
            self.crashes += 1
            raise TransientError("crash", "the worker died after the fold was written")
        return folded


class FlakyDeferrals(FakeDeferrals):
    """Refuses some deferrals (the flush message is not enqueued: the request must be retried)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def defer(self, deferrals: Any) -> set[str]:
        refused = {d.message_id for d in deferrals if self.rng.random() < 0.1}
        kept = [d for d in deferrals if d.message_id not in refused]
        return refused | super().defer(kept)


class FlakyLog(FakeMessageLog):
    """Refuses some writes of outcomes other than sent ones (a sent email's lost write is the crash window)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def record(self, outcomes: Any) -> None:
        if all(o.status != "sent" for o in outcomes) and self.rng.random() < 0.1:
            raise TransientError("dynamodb_failed", "the log could not be written")
        super().record(outcomes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_folded_request_is_in_exactly_one_digest_sent_once(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    log, deferrals, digests = FlakyLog(rng), FlakyDeferrals(rng), CrashingDigests(rng)
    service, world = build_fake_service(
        clock=clock, message_log=log, deferrals=deferrals, digests=digests, digest_window_seconds=30
    )
    requests = [
        {
            "recipient_email": f"user{i % USERS}@example.com",
            "template_id": "activity_digest",
            "user_id": f"user{i % USERS}",
            "digest_key": "comments",
            "template_data": {"title": f"Item {i}", "url": f"https://example.com/{i}"},
        }
        for i in range(REQUESTS)
    ]
    # The queue: (visible at, body, receive count); deliveries come in random batches, spread over time.
    queue: list[tuple[float, str, int]] = [(clock() + i * 0.5, json.dumps(r), 1) for i, r in enumerate(requests)]
    serial = 0
    try:
        for _ in range(2000):
            if not queue:
                break
            queue.sort(key=lambda entry: entry[0])
            clock.advance(max(0.0, queue[0][0] - clock()))
            due = [entry for entry in queue if entry[0] <= clock()][: rng.randint(1, 10)]
            for entry in due:
                queue.remove(entry)
            batch = []
            for _at, body, receives in due:
                serial += 1
                batch.append(QueueRecord(f"m{serial}", f"r{serial}", body, receive_count=receives))
                if rng.random() < 0.2:  # at-least-once: the same message delivered again
                    serial += 1
                    batch.append(QueueRecord(f"m{serial}", f"r{serial}", body, receive_count=receives))
            deferrals.deferred.clear()
            report = service.process(batch)
            by_id = {record.message_id: record for record in batch}
            for message_id in report.failed:
                record = by_id[message_id]
                queue.append((clock() + 1.0, record.body, record.receive_count + 1))
            for deferral in list(deferrals.deferred):
                queue.append((clock() + deferral.seconds, deferral.body, 1))
            # Past every lease, so a crashed attempt's claim can be taken over.
            clock.advance(0.1)
        assert not queue, "the queue did not drain"
        assert digests.crashes > 0 and serial > REQUESTS  # the chaos happened: crashes and duplicates

        # Every request ended digested, naming a digest email that was sent
        ids = [parse_request(json.dumps(r)).request_id for r in requests]
        outcomes: dict[str, Outcome] = {rid: log.outcome(rid) for rid in ids}  # type: ignore[misc]
        assert {o.status for o in outcomes.values() if o} == {"digested"} and all(outcomes.values())
        sent = {o.request_id: o for o in log.outcomes if o.status == "sent"}
        assert {o.digest_id for o in outcomes.values()} <= set(sent)
        # Each request is listed once, in the digest its log names; no digest email went out twice
        listed = Counter(
            line.strip().removeprefix("- ")
            for email in world.sender.sent
            for line in email.text.splitlines()
            if line.strip().startswith("- Item ")
        )
        assert listed == Counter(f"Item {i}" for i in range(REQUESTS))
        assert len(world.sender.sent) == len(sent)
    finally:
        world.close()


def test_the_chaos_fakes_do_fail() -> None:
    rng = random.Random(0)
    deferrals = FlakyDeferrals(rng)
    refused = deferrals.defer([Deferral(f"m{i}", "{}", 1, "x") for i in range(100)])
    assert 0 < len(refused) < 100

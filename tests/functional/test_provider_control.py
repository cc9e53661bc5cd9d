"""`mailwright_tools.providers` on a deployed stack's outputs, against moto's idempotency table.

The CLI finds a deployed stack's providers in its `Providers` and `Failover`
outputs (JSON) and reads and switches the breakers where the workers keep them.
"""

from __future__ import annotations

import json

import boto3
import pytest

from mailwright.adapters.provider_breaker import DynamoProviderBreakerStore
from mailwright.errors import ProviderOutageError
from mailwright.failover import BreakerPolicy, ProviderBreaker
from mailwright_tools.fakes import FakeProviderEvents
from mailwright_tools.providers import ProviderControl, ProvidersError, UnknownLaneError
from mailwright_tools.provision import StackResources
from mailwright_tools.target import Target

PROVIDERS = json.dumps([{"name": "sendgrid", "kind": "sendgrid"}])
FAILOVER = json.dumps(
    {
        "critical": {"enabled": True, "provider": "sendgrid"},
        "standard": {"enabled": True, "provider": "sendgrid"},
        "bulk": {"enabled": False, "provider": "sendgrid"},
    }
)


def deployed(stack: StackResources, *, providers: str = PROVIDERS, failover: str = FAILOVER) -> Target:
    """A deployed stack as `deployed_target` reads it from its outputs."""
    return Target(
        kind="deployed",
        name="Mailwright",
        region="us-east-1",
        endpoint_url=None,
        queues=dict(stack.queues),
        dlqs=dict(stack.dlqs),
        tables={"idempotency": stack.idempotency_table, "messages": stack.messages_table},
        templates_bucket=stack.templates_bucket,
        extra={"providers": providers, "failover": failover},
    )


def test_status_reads_the_breakers_the_workers_write(stack: StackResources) -> None:
    control = ProviderControl.for_target(deployed(stack))
    # A worker of the standard lane opens SES's breaker (as an outage would).
    store = DynamoProviderBreakerStore(boto3.client("dynamodb"), stack.idempotency_table)
    worker = ProviderBreaker(
        store, lane="standard", provider="ses", policy=BreakerPolicy(), events=FakeProviderEvents()
    )
    worker.failed(ProviderOutageError("ses_paused", "sending paused", at_once=True), "use")

    statuses = {s.lane: s for s in control.status()}

    assert list(statuses) == ["critical", "standard", "bulk"]
    assert statuses["critical"].sending_through == "ses"
    assert statuses["standard"].ses.state == "open" and statuses["standard"].sending_through == "sendgrid"
    assert statuses["standard"].ses.probe_at is not None and not statuses["standard"].ses.by_hand
    assert [(c.after, c.reason) for c in statuses["standard"].history] == [("open", "ses_paused: sending paused")]
    assert statuses["standard"].as_dict()["breakers"]["ses"]["state"] == "open"


def test_failover_by_hand_on_a_lane_that_does_not_fail_over_pauses_it(stack: StackResources) -> None:
    control = ProviderControl.for_target(deployed(stack))

    status = control.failover("bulk", actor="cli:ops@host", note="campaign on hold during the incident")

    assert status.ses.state == "open" and status.ses.by_hand and status.ses.actor == "cli:ops@host"
    assert status.sending_through == ""  # bulk does not fail over: its mail waits
    restored = control.restore("bulk", actor="cli:ops@host", note="")
    assert restored.sending_through == "ses"
    assert [(c.after, c.actor, c.reason) for c in restored.history] == [
        ("open", "cli:ops@host", "failed over by hand: campaign on hold during the incident"),
        ("closed", "cli:ops@host", "restored by hand"),
    ]


def test_a_secondarys_own_breaker_can_be_restored_and_no_other(stack: StackResources) -> None:
    control = ProviderControl.for_target(deployed(stack))

    assert control.restore("critical", actor="a", note="key rotated", provider="sendgrid").secondary.state == "closed"
    with pytest.raises(ProvidersError, match="not 'mailgun'"):
        control.restore("critical", actor="a", note="", provider="mailgun")
    with pytest.raises(UnknownLaneError, match="unknown lane 'urgent'"):
        control.failover("urgent", actor="a", note="")


def test_a_stack_without_providers_says_so(stack: StackResources) -> None:
    with pytest.raises(ProvidersError, match="has no secondary providers"):
        ProviderControl.for_target(deployed(stack, providers="", failover=""))
    with pytest.raises(ProvidersError, match="not valid JSON"):
        ProviderControl.for_target(deployed(stack, providers="[{oops"))

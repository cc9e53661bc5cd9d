"""Secondary providers in the stack: secrets, worker grants and environment, the webhook, a second SES region.

One more synth (module-scoped) switches every provider feature on: an SMTP relay
named by its secret's name, SendGrid by its secret's complete ARN with a separate
webhook secret, and SES in eu-west-1 with its feedback topic; standard fails over
to SendGrid and bulk to the other region. The default synth (no providers) must
stay exactly as without the feature.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match
from cdk_nag import AwsSolutionsChecks

from infra.nag import acknowledged_rules
from mailwright.constants import PROVIDER_WEBHOOK_HANDLER, Env, Outputs
from mailwright.settings import ProviderWebhookSettings, WorkerSettings
from tests.infra.synth import REPO_ROOT, Synthesized, as_list, render, role_statements, synthesize, without_tracing

pytestmark = pytest.mark.slow

SENDGRID_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mailwright/sendgrid-AbCdEf"
EU_TOPIC = "arn:aws:sns:eu-west-1:123456789012:mailwright-eu-events"
PROVIDERS = [
    {
        "name": "relay",
        "kind": "smtp",
        "secret": "mailwright/relay",
        "max_send_rate": 8,
        "settings": {"host": "smtp.postmarkapp.com", "port": 587},
    },
    {"name": "sendgrid", "kind": "sendgrid", "secret": SENDGRID_ARN, "webhook_secret": "mailwright/sendgrid-webhook"},
    {
        "name": "ses-eu",
        "kind": "ses_region",
        "settings": {"region": "eu-west-1", "configuration_set": "mailwright-eu", "feedback_topic_arn": EU_TOPIC},
    },
]
FAILOVER = {
    "standard": {"provider": "sendgrid", "alarm_after_minutes": 5},
    "bulk": {"enabled": True, "provider": "ses-eu"},
}
CFN_LINT = "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"


@pytest.fixture(scope="module")
def providers_synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The stack with three secondaries and per-lane failover."""
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-providers"),
        providers=PROVIDERS,
        failover=FAILOVER,
        provider_webhook={"reserved_concurrency": 3},
    )


def _webhook(synth: Synthesized) -> dict[str, Any]:
    (found,) = [
        resource
        for resource in synth.resources("AWS::Lambda::Function").values()
        if resource["Properties"]["Handler"] == PROVIDER_WEBHOOK_HANDLER
    ]
    return found


def _secret_statements(synth: Synthesized, function: dict[str, Any]) -> list[str]:
    """The secrets a function may read, rendered as text."""
    found = []
    for statement in without_tracing(role_statements(synth, function)):
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            found.extend(str(render(resource)) for resource in as_list(statement["Resource"]))
    return found


def _plain_environment(variables: dict[str, Any]) -> dict[str, str]:
    """The environment with CDK tokens rendered as `${...}` text (ARNs keep their shape)."""
    return {key: str(render(value)) for key, value in variables.items()}


# -- without providers: nothing changes -------------------------------------------------


def test_without_providers_the_stack_has_no_provider_part(synthesized: Synthesized) -> None:
    for _, worker in synthesized.workers().values():
        variables = worker["Properties"]["Environment"]["Variables"]
        assert Env.PROVIDERS not in variables and Env.FAILOVER not in variables
    handlers = {r["Properties"]["Handler"] for r in synthesized.resources("AWS::Lambda::Function").values()}
    assert PROVIDER_WEBHOOK_HANDLER not in handlers
    assert not {Outputs.PROVIDERS, Outputs.FAILOVER, Outputs.PROVIDER_WEBHOOK_URL} & set(synthesized.json["Outputs"])
    assert not [name for name in synthesized.json["Outputs"] if "provider" in name.lower()]
    alarms = {a["Properties"]["AlarmName"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()}
    assert not [name for name in alarms if "provider" in name]


# -- workers -----------------------------------------------------------------------------


def test_workers_get_the_providers_and_their_lanes_failover_as_the_runtime_reads_them(
    providers_synthesized: Synthesized,
) -> None:
    workers = providers_synthesized.workers()
    expected = {"critical": "relay", "standard": "sendgrid", "bulk": "ses-eu"}
    for lane, (_, worker) in workers.items():
        env = _plain_environment(worker["Properties"]["Environment"]["Variables"])
        failover = json.loads(env[Env.FAILOVER])
        assert failover["enabled"] is True and failover["provider"] == expected[lane]
        providers = {p["name"]: p for p in json.loads(env[Env.PROVIDERS])}
        assert list(providers) == ["relay", "sendgrid", "ses-eu"]
        # A secret by name is passed as its partial ARN; by ARN, as given. Never a value.
        assert providers["relay"]["secret_arn"].endswith(":secret:mailwright/relay")
        assert providers["sendgrid"]["secret_arn"] == SENDGRID_ARN
        assert "secret_arn" not in providers["ses-eu"] and "feedback_topic_arn" not in providers["ses-eu"]["settings"]
        # max_send_rate 8 split among the critical lane's 4 workers; the default 5 among 2 workers.
        assert providers["relay"]["send_rate"] == 2.0 and providers["sendgrid"]["send_rate"] == 2.5
        # The runtime accepts what the stack sets (tokens aside, the text is what Lambda will see).
        env = {**env, Env.UNSUBSCRIBE_BASE_URL: "https://example.com/u"}
        settings = WorkerSettings.from_env(env)
        assert settings.failover is not None and settings.failover.provider == expected[lane]


def test_each_worker_reads_only_its_lanes_provider_secret(providers_synthesized: Synthesized) -> None:
    workers = providers_synthesized.workers()
    secrets = {lane: _secret_statements(providers_synthesized, worker) for lane, (_, worker) in workers.items()}

    assert [s for s in secrets["critical"] if "mailwright/" in s] == [
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:mailwright/relay-??????"
    ]
    assert [s for s in secrets["standard"] if "mailwright/" in s] == [SENDGRID_ARN]
    # Bulk sends through SES in eu-west-1: no provider secret at all, and no webhook key anywhere.
    assert [s for s in secrets["bulk"] if "mailwright/" in s] == []
    assert not any("sendgrid-webhook" in s for lane in secrets.values() for s in lane)


def test_a_lane_failing_over_to_another_region_may_send_there_as_the_same_identity(
    providers_synthesized: Synthesized,
) -> None:
    def ses_resources(lane: str) -> set[str]:
        _, worker = providers_synthesized.workers()[lane]
        return {
            str(render(resource))
            for statement in without_tracing(role_statements(providers_synthesized, worker))
            if "ses:SendEmail" in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        }

    identity = providers_synthesized.config.identity
    eu = {
        f"arn:${{AWS::Partition}}:ses:eu-west-1:${{AWS::AccountId}}:identity/{identity}",
        "arn:${AWS::Partition}:ses:eu-west-1:${AWS::AccountId}:configuration-set/mailwright-eu",
    }
    assert eu <= ses_resources("bulk")
    assert not any(":eu-west-1:" in arn for arn in ses_resources("critical") | ses_resources("standard"))


def test_a_lane_that_does_not_fail_over_reads_no_provider_secret(tmp_path: Path) -> None:
    synth = synthesize(tmp_path, providers=PROVIDERS[:1], failover={"critical": False})
    workers = synth.workers()

    assert not [s for s in _secret_statements(synth, workers["critical"][1]) if "mailwright/" in s]
    assert [s for s in _secret_statements(synth, workers["standard"][1]) if "mailwright/relay" in s]
    env = workers["critical"][1]["Properties"]["Environment"]["Variables"]
    assert json.loads(env[Env.FAILOVER])["enabled"] is False
    # Only standard fails over to the relay: its two workers share its 8 emails/s.
    assert json.loads(str(render(env[Env.PROVIDERS])))[0]["send_rate"] == 4.0
    # No SendGrid or Mailgun: no webhook.
    assert Outputs.PROVIDER_WEBHOOK_URL not in synth.json["Outputs"]


# -- the provider webhook ---------------------------------------------------------------


def test_the_webhook_is_a_public_url_behind_a_concurrency_cap(providers_synthesized: Synthesized) -> None:
    function = _webhook(providers_synthesized)
    props = function["Properties"]

    assert props["ReservedConcurrentExecutions"] == 3
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    providers_synthesized.template.has_resource_properties(
        "AWS::Lambda::Url", {"AuthType": "NONE", "TargetFunctionArn": Match.any_value()}
    )
    url = providers_synthesized.json["Outputs"][Outputs.PROVIDER_WEBHOOK_URL]["Value"]
    assert url["Fn::GetAtt"][1] == "FunctionUrl"


def test_the_webhook_reads_the_verification_key_not_the_sending_credentials(
    providers_synthesized: Synthesized,
) -> None:
    function = _webhook(providers_synthesized)
    secrets = _secret_statements(providers_synthesized, function)
    env = _plain_environment(function["Properties"]["Environment"]["Variables"])

    assert [s for s in secrets if "mailwright/" in s] == [
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:mailwright/sendgrid-webhook-??????"
    ]
    providers = json.loads(env[Env.PROVIDERS])
    assert [(p["name"], p["secret_arn"].rsplit(":", 1)[-1]) for p in providers] == [
        ("sendgrid", "mailwright/sendgrid-webhook")
    ]
    settings = ProviderWebhookSettings.from_env(env)
    assert [p.name for p in settings.providers] == ["sendgrid"]


def test_the_webhook_touches_only_what_feedback_needs(providers_synthesized: Synthesized) -> None:
    function = _webhook(providers_synthesized)
    statements = without_tracing(role_statements(providers_synthesized, function))
    tables = {
        name: providers_synthesized.output_ref(output)
        for name, output in (
            ("suppression", Outputs.SUPPRESSION_TABLE),
            ("messages", Outputs.MESSAGES_TABLE),
            ("preferences", Outputs.PREFERENCES_TABLE),
            ("idempotency", Outputs.IDEMPOTENCY_TABLE),
            ("templates", Outputs.TEMPLATES_BUCKET),
        )
    }
    by_table: dict[str, set[str]] = {}
    conditions: dict[str, Any] = {}
    for statement in statements:
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            for name, logical_id in tables.items():
                if logical_id in text:
                    by_table.setdefault(name, set()).update(as_list(statement["Action"]))
                    if "Condition" in statement:
                        conditions[name] = statement["Condition"]
    actions = {a for s in statements for a in as_list(s["Action"])}

    assert by_table["suppression"] == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert by_table["messages"] == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"}
    assert by_table["preferences"] == {"dynamodb:UpdateItem"}
    # The replay guard's items only: never the claims of the idempotency table.
    assert by_table["idempotency"] == {"dynamodb:PutItem", "dynamodb:DeleteItem"}
    assert conditions["idempotency"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["webhook#*"]}}
    assert "templates" not in by_table
    assert not {a for a in actions if a.startswith(("dynamodb:Scan", "dynamodb:Batch", "ses:", "sqs:", "s3:"))}


def test_the_webhook_alarms_on_errors_and_throttles(providers_synthesized: Synthesized) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in providers_synthesized.resources("AWS::CloudWatch::Alarm").values()
    }
    stack = providers_synthesized.config.stack_name

    throttles = alarms[f"{stack}-throttles-provider-webhook"]
    assert throttles["MetricName"] == "Throttles" and throttles["Threshold"] == 1
    assert "provider_webhook.reserved_concurrency, 3" in throttles["AlarmDescription"]
    assert alarms[f"{stack}-errors-provider-webhook"]["MetricName"] == "Errors"


# -- breaker alarms, dashboard, outputs ------------------------------------------------------


def test_ses_breaker_open_too_long_alarms_per_lane(providers_synthesized: Synthesized) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in providers_synthesized.resources("AWS::CloudWatch::Alarm").values()
    }
    stack = providers_synthesized.config.stack_name

    for lane, minutes in (("critical", 15), ("standard", 5), ("bulk", 15)):
        alarm = alarms[f"{stack}-provider-breaker-{lane}"]
        assert alarm["MetricName"] == "ProviderBreakerOpen" and alarm["Namespace"] == "Mailwright"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "service": "mailwright",
            "lane": lane,
            "provider": "ses",
        }
        assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Maximum", 60, 1)
        assert alarm["EvaluationPeriods"] == minutes and alarm["ComparisonOperator"] == (
            "GreaterThanOrEqualToThreshold"
        )
        # A lane that sends nothing reports nothing: that neither trips nor clears it.
        assert alarm["TreatMissingData"] == "ignore"
        assert f"mailwright providers restore {lane}" in alarm["AlarmDescription"]
        assert alarm["AlarmActions"] and alarm["OKActions"]


def test_the_dashboard_shows_sends_per_provider_failovers_and_breakers(providers_synthesized: Synthesized) -> None:
    (dashboard,) = providers_synthesized.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(render(dashboard["Properties"]["DashboardBody"]))

    for needle in ("Sends per provider", "FailedOver", "ProviderBreakerOpened"):
        assert needle in body, needle
    assert re.search(r"ProviderBreakerOpen(?!ed)", body), "the breaker state gauge"
    assert "SUM(sent) - FILL(SUM(failed), 0)" in body


def test_outputs_name_the_providers_and_each_lanes_failover(providers_synthesized: Synthesized) -> None:
    outputs = providers_synthesized.json["Outputs"]

    assert json.loads(outputs[Outputs.PROVIDERS]["Value"]) == [
        {"name": "relay", "kind": "smtp"},
        {"name": "sendgrid", "kind": "sendgrid"},
        {"name": "ses-eu", "kind": "ses_region"},
    ]
    assert json.loads(outputs[Outputs.FAILOVER]["Value"]) == {
        "critical": {"enabled": True, "provider": "relay"},
        "standard": {"enabled": True, "provider": "sendgrid"},
        "bulk": {"enabled": True, "provider": "ses-eu"},
    }


# -- the second SES region's feedback ----------------------------------------------------------


def test_the_other_regions_event_topic_feeds_the_feedback_queue(providers_synthesized: Synthesized) -> None:
    queue = providers_synthesized.output_ref(Outputs.FEEDBACK_QUEUE_URL)

    providers_synthesized.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "TopicArn": EU_TOPIC,
            "Region": "eu-west-1",
            "Protocol": "sqs",
            "RawMessageDelivery": False,
            "Endpoint": {"Fn::GetAtt": [queue, "Arn"]},
        },
    )
    policies = [
        statement
        for policy in providers_synthesized.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in policy["Properties"]["Queues"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    allowed = [s for s in policies if s["Effect"] == "Allow" and s["Principal"] == {"Service": "sns.amazonaws.com"}]
    assert {"ArnEquals": {"aws:SourceArn": EU_TOPIC}} in [s["Condition"] for s in allowed]
    assert all(s["Action"] == "sqs:SendMessage" for s in allowed)


# -- clean for cdk-nag and cfn-lint -------------------------------------------------------------


def test_the_awssolutions_pack_finds_nothing_new(providers_synthesized: Synthesized, synthesized: Synthesized) -> None:
    report = AwsSolutionsChecks().validate_scope(providers_synthesized.stack)

    assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations] == []
    # No acknowledgement beyond the default stack's.
    with_providers = {rule for _, rule, _ in acknowledged_rules(providers_synthesized.stack)}
    assert with_providers == {rule for _, rule, _ in acknowledged_rules(synthesized.stack)}


def test_cfn_lint_finds_nothing(providers_synthesized: Synthesized) -> None:
    template = providers_synthesized.outdir / f"{providers_synthesized.stack.artifact_id}.template.json"

    result = subprocess.run(  # noqa: S603 - our own interpreter, our own file
        [sys.executable, "-c", CFN_LINT, "--", str(template)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr

"""cdk-nag (AwsSolutions): no finding left unacknowledged, and every acknowledgement known and reasoned.

cdk-nag 3 (pinned in requirements-dev.txt) runs as a CDK policy-validation plugin
rather than an Aspect: the shared synth registers it exactly as app.py does
(tests/infra/synth.py), so a finding nobody acknowledged fails that synth and
every test with it. These tests say the same thing directly, and keep the list
of acknowledgements from growing unnoticed.
"""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks

from infra.nag import acknowledged_rules
from mailwright.constants import Outputs
from tests.infra.synth import Synthesized

# Each module shares the session's synthesized stacks (see conftest.py).
pytestmark = pytest.mark.slow

# What CDK's BucketDeployment grants itself (its role is ours, its policy CDK's).
CDK_DEPLOYMENT_FINDINGS = {
    *(f"AwsSolutions-IAM5[Action::{a}]" for a in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*")),
    "AwsSolutions-IAM5[Action::s3:Abort*]",
    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*]",
}


def _expected_rules(synthesized: Synthesized) -> set[str]:
    bucket = synthesized.output_ref(Outputs.TEMPLATES_BUCKET)
    messages = synthesized.output_ref(Outputs.MESSAGES_TABLE)
    # API Gateway's account-wide logging role, when the stack creates it (api.cloudwatch_role).
    logging_role = (
        {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]"
        }
        if synthesized.config.api.cloudwatch_role
        else set()
    )
    # Without api.waf, both APIs' stages say why they have no web ACL.
    no_waf = {"AwsSolutions-APIG3"} if synthesized.config.api.waf is None else set()
    return (
        logging_role
        | no_waf
        | {
            # Every function: Python 3.12 pinned with the bundling; X-Ray's "*".
            "AwsSolutions-L1",
            "AwsSolutions-IAM5[Resource::*]",
            # Workers: templates under their prefix, the message log's one index.
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/templates/*]",
            # The templates deploy function: the bundles CDK's deployment staged.
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/templates/_deploy/*]",
            f"AwsSolutions-IAM5[Resource::<{messages}.Arn>/index/*]",
            # CDK's BucketDeployment.
            f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/*]",
            *CDK_DEPLOYMENT_FINDINGS,
            # The templates bucket's access logs, the link-signing key's rotation, the ingest DLQ, dedupe PITR.
            "AwsSolutions-S1",
            "AwsSolutions-SMG4",
            "AwsSolutions-SQS3",
            "AwsSolutions-DDB3",
            # The HTTPS APIs: IAM or API keys rather than Cognito; the producers' API authorizes by API key.
            "AwsSolutions-COG4",
            "AwsSolutions-APIG4",
            # The key-retirement role deletes API keys created after deployment (their ids unknown here).
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/apikeys/*]",
            # Scheduled sends: workers and the API act on the schedules of the stack's group (named at run time).
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
            f"schedule/{synthesized.config.stack_name}-schedules/*]",
        }
    )


@pytest.mark.parametrize("variant", ["default", "domain"])
def test_the_awssolutions_pack_finds_nothing_unacknowledged(
    synthesized: Synthesized, domain_synthesized: Synthesized, variant: str
) -> None:
    stack = (synthesized if variant == "default" else domain_synthesized).stack

    report = AwsSolutionsChecks().validate_scope(stack)

    assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations] == []
    assert report.success
    # cdk-nag 3 reports through validation, not annotations; none may appear there either.
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []


@pytest.mark.parametrize("variant", ["default", "domain"])
def test_every_acknowledgement_is_expected_and_has_a_reason(
    synthesized: Synthesized, domain_synthesized: Synthesized, variant: str
) -> None:
    synth = synthesized if variant == "default" else domain_synthesized

    acknowledged = acknowledged_rules(synth.stack)

    assert {rule for _, rule, _ in acknowledged} == _expected_rules(synth)
    for path, rule, reason in acknowledged:
        assert len(reason) >= 60, f"{path} {rule}: {reason!r}"
        # A wildcard finding is acknowledged one by one, never the whole rule.
        assert rule != "AwsSolutions-IAM5", path


def test_only_roles_acknowledge_wildcards_and_only_functions_the_runtime(synthesized: Synthesized) -> None:
    for path, rule, _ in acknowledged_rules(synthesized.stack):
        if rule.startswith("AwsSolutions-IAM5"):
            assert path.endswith("Role"), (path, rule)
        if rule == "AwsSolutions-L1":
            functions = {"CriticalWorker", "StandardWorker", "BulkWorker", "Worker", "Function", "Publisher"}
            functions |= {"DeadLetters", "Sender"}
            assert path.split("/")[-1] in functions or ("CDKBucketDeployment" in path), path


def test_the_pack_does_find_what_it_should() -> None:
    # The checks are not vacuous: an unencrypted queue without a DLQ and plain-HTTP access is reported.
    stack = Stack(App(), "Probe")
    sqs.Queue(stack, "Queue", encryption=sqs.QueueEncryption.UNENCRYPTED)

    report = AwsSolutionsChecks().validate_scope(stack)

    found = {violation.rule_name for violation in report.violations}
    assert {"AwsSolutions-SQS2", "AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= found

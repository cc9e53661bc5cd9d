"""SNS topics that an AWS service publishes to, encrypted with a key that service may use.

A service cannot publish to a topic under the AWS managed key (alias/aws/sns):
that key's policy cannot be changed to let it in. A customer managed key can.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


def encrypted_topic(
    scope: Construct,
    *,
    publisher: str,
    key_description: str,
    key_statement_sid: str,
    key_conditions: dict[str, Any] | None = None,
    display_name: str | None = None,
) -> tuple[kms.Key, sns.Topic]:
    """A rotating customer managed key that `publisher` (a service principal) may use, and a topic under it.

    Created in `scope` as `TopicKey` and `Topic`; the topic refuses plain HTTP.
    Who may publish is the caller's to add to the topic's policy.
    """
    key = kms.Key(
        scope,
        "TopicKey",
        description=key_description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.DESTROY,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=key_statement_sid,
            principals=[iam.ServicePrincipal(publisher)],
            actions=["kms:GenerateDataKey*", "kms:Decrypt"],
            # In a key policy, "*" is the key itself.
            resources=["*"],
            conditions=key_conditions,
        )
    )
    topic = sns.Topic(scope, "Topic", display_name=display_name, master_key=key, enforce_ssl=True)
    return key, topic

"""moto's conditional writes, made atomic: racing threads get DynamoDB's answer."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mailwright_tools.local import moto_atomic

ROUNDS = 100


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond, so a check-then-write gap is hit (plain moto fails this test)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("eager_thread_switches")
def test_only_one_of_many_racing_conditional_puts_wins() -> None:
    moto_atomic.apply()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        won: list[int] = []
        refused: list[str] = []
        start = threading.Barrier(8)

        def claim(n: int) -> None:
            start.wait()
            for round_ in range(ROUNDS):
                try:
                    client.put_item(
                        TableName="t",
                        Item={"pk": {"S": f"k{round_}"}, "by": {"N": str(n)}},
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                    won.append(round_)
                except ClientError as exc:
                    refused.append(exc.response["Error"]["Code"])

        threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(won) == list(range(ROUNDS))  # each key claimed exactly once
        assert refused == ["ConditionalCheckFailedException"] * (8 * ROUNDS - ROUNDS)

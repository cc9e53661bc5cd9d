"""The functions' AWS plumbing without boto3: botocore sessions, clients built on first use, item decoding."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader
from botocore.stub import Stubber

from mailwright.adapters.aws import BotocoreSession, LazyClient, client_config, model_loader
from mailwright.adapters.dynamodb import _plain, deserialize

ITEM: dict[str, Any] = {
    "pk": "user#1",
    "count": Decimal(3),
    "ratio": Decimal("0.25"),
    "big": Decimal("12345678901234567890123456789012345678"),
    "flag": True,
    "nothing": None,
    "raw": b"\x00\x01",
    "tags": {"a", "b"},
    "numbers": {Decimal(1), Decimal("2.5")},
    "blobs": {b"x", b"y"},
    "nested": {"list": [Decimal(1), "two", {"three": [False, None]}], "empty": {}},
}


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    serializer = TypeSerializer()
    return {key: serializer.serialize(value) for key, value in item.items()}


def _without_binary_wrappers(value: Any) -> Any:
    if isinstance(value, Binary):
        return bytes(value)
    if isinstance(value, dict):
        return {k: _without_binary_wrappers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_binary_wrappers(v) for v in value]
    if isinstance(value, set):
        return {_without_binary_wrappers(v) for v in value}
    return value


def test_items_decode_as_boto3_decodes_them_with_binaries_as_bytes() -> None:
    boto3_deserializer = TypeDeserializer()
    for key, value in _wire(ITEM).items():
        assert deserialize(value) == _without_binary_wrappers(boto3_deserializer.deserialize(value)), key


def test_plain_items_have_numbers_as_int_or_float() -> None:
    plain = _plain(_wire(ITEM))
    assert plain["count"] == 3 and isinstance(plain["count"], int)
    assert plain["ratio"] == 0.25 and isinstance(plain["ratio"], float)
    assert plain["nested"]["list"][0] == 1 and isinstance(plain["nested"]["list"][0], int)
    assert plain["raw"] == b"\x00\x01"


@pytest.mark.parametrize("value", [{}, {"S": "a", "N": "1"}, {"X": "a"}])
def test_a_malformed_attribute_value_is_refused(value: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        deserialize(value)


def test_a_lazy_client_is_built_on_first_use_then_kept() -> None:
    built: list[str] = []

    class Client:
        def send_message(self, **kwargs: Any) -> dict[str, Any]:
            return {"MessageId": "m-1", **kwargs}

    def build() -> Client:
        built.append("sqs")
        return Client()

    client = LazyClient(build)
    assert built == []
    assert client.send_message(QueueUrl="q")["MessageId"] == "m-1"
    client.send_message(QueueUrl="q")
    assert built == ["sqs"]


def test_a_lazy_client_that_failed_to_build_is_built_again_on_next_use() -> None:
    attempts: list[int] = []

    def build() -> Any:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("no region")
        return type("Client", (), {"name": "sqs"})()

    client = LazyClient(build)
    with pytest.raises(RuntimeError, match="no region"):
        _ = client.name
    assert client.name == "sqs"
    assert len(attempts) == 2


def test_a_botocore_session_makes_working_low_level_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = BotocoreSession().client("sqs", region_name="eu-west-1", config=client_config(max_attempts=2))
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries["mode"] == "standard"
    with Stubber(client) as stubber:
        stubber.add_response("send_message", {"MessageId": "m-1"}, {"QueueUrl": "q", "MessageBody": "{}"})
        assert client.send_message(QueueUrl="q", MessageBody="{}")["MessageId"] == "m-1"


def test_making_a_client_does_not_list_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore's own loader lists ~400 service directories to check a client's service exists (cold start)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    listed: list[str] = []
    full_scan = Loader.list_available_services

    def counting(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        return full_scan(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", counting)
    session = BotocoreSession()

    for service in ("sesv2", "dynamodb", "s3", "secretsmanager"):
        client = session.client(service, config=client_config(max_attempts=2))
        assert client.meta.service_model.service_name == service
    assert listed == []

    # An unknown service still gets botocore's error, naming the services there are (then read in full).
    with pytest.raises(
        UnknownServiceError, match=r"Unknown service: 'nosuchservice'\. Valid service names are: .*sesv2"
    ):
        session.client("nosuchservice")
    assert listed == ["service-2"]


def test_the_model_loader_lists_what_botocores_lists() -> None:
    available = model_loader(None).list_available_services("service-2")

    assert "sesv2" in available
    assert "nosuchservice" not in available
    assert "../sesv2" not in available
    assert available == Loader().list_available_services("service-2")
    assert list(available) == sorted(available) and len(available) > 300 and available[0] == min(available)

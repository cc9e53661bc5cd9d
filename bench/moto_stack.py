"""The stack in moto, in-process, with the real adapters: API calls counted, faults injected at the botocore edge.

`MotoStack` is what the DynamoDB measurement and the chaos run share: the
resources `mailwright_tools.provision` creates (as the local stack does),
and `container()` building one emulated Lambda container: its own boto3
session (hooks registered before any client exists, since clients copy
their session's hooks) and a `SendService` from `build_send_service`, the
deployed composition root.

moto's in-process backends are not safe under concurrent calls (a
conditional put is a check then a store), while each real AWS API call is
atomic; `serialized_moto()` makes every call atomic by holding one lock
around moto's request handling.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import boto3

from bench.common import REPO
from infra.config import MailwrightConfig
from mailwright.adapters.address_keys import DynamoAddressKeyMarker, SecretAddressKeys
from mailwright.address_keys import AddressHasher
from mailwright.constants import Env, Keys
from mailwright.sending import SendService
from mailwright.settings import WorkerSettings
from mailwright.wiring import build_send_service
from mailwright_tools.fakes import FakeAccountReader
from mailwright_tools.provision import StackResources, provision

# (operation "service.Operation", params) -> a (http response, parsed) pair to short-circuit the call, or None.
Fault = Callable[[str, dict[str, Any]], Any]


@contextmanager
def serialized_moto() -> Iterator[None]:
    """Make each moto API call atomic, as each AWS API call is."""
    from moto.core import botocore_stubber

    lock = threading.RLock()
    original = botocore_stubber.BotocoreStubber.__call__

    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    botocore_stubber.BotocoreStubber.__call__ = locked  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore_stubber.BotocoreStubber.__call__ = original  # type: ignore[method-assign]


@contextmanager
def moto_stack(config: MailwrightConfig) -> Iterator[MotoStack]:
    """Provision the stack in moto (in-process) for the length of the block."""
    from moto import mock_aws

    with mock_aws(), serialized_moto():
        session = boto3.session.Session(region_name="us-east-1")
        resources = provision(config, templates_dir=REPO / "templates", session=session)
        yield MotoStack(config=config, resources=resources)


# -- DynamoDB capacity units from the items written --------------------------------


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes DynamoDB bills for one typed attribute value (without its name)."""
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(str(raw).encode("utf-8"))
    if kind == "N":
        digits = str(Decimal(str(raw)).normalize()).replace("-", "").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "B":
        return len(raw)
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: item}) for item in raw)
    if kind == "L":
        return 3 + sum(1 + attribute_size(item) for item in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in raw.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item as DynamoDB sizes it: attribute names plus values."""
    return sum(len(name.encode("utf-8")) + attribute_size(value) for name, value in item.items())


# The message log's table keys, which its keys-only index projects beside the SES message id.
INDEX_KEY_ATTRIBUTES = (Keys.MESSAGES_PK, Keys.MESSAGES_SK)
GSI_ENTRY_OVERHEAD_BYTES = 100  # per index entry, as DynamoDB sizes it


def write_units(size: int) -> int:
    """Write request units for one item write of `size` bytes (1 KB each, rounded up)."""
    return max(1, math.ceil(size / 1024))


# What an item of the idempotency table is for, by its key's prefix (the adapters' item kinds).
IDEMPOTENCY_PURPOSES: tuple[tuple[str, str], ...] = (("claim#", "claim"), ("rate#", "rate_limit"), ("pace#", "pacing"))


def purpose_of(role: str, params: dict[str, Any]) -> str:
    """What a call on a table of `role` (suppression, preferences, idempotency, messages) is for."""
    if role != "idempotency":
        return role
    key = params.get("Key") or params.get("Item") or {}
    pk = str(key.get(Keys.IDEMPOTENCY_PK, {}).get("S", ""))
    return next((purpose for prefix, purpose in IDEMPOTENCY_PURPOSES if pk.startswith(prefix)), "idempotency")


@dataclass
class ApiLedger:
    """Every AWS call the containers made, by operation and table, with the DynamoDB capacity they consume.

    With `roles` (table name -> suppression, preferences, idempotency, messages), the units are also
    counted by what they are for (`read_units_by_purpose`, `write_units_by_purpose`): the claim, the
    rate limit and pacing share the idempotency table.
    """

    calls: Counter[str] = field(default_factory=Counter)
    read_units: Counter[str] = field(default_factory=Counter)
    write_units: Counter[str] = field(default_factory=Counter)
    gsi_write_units: Counter[str] = field(default_factory=Counter)
    item_bytes: dict[str, list[int]] = field(default_factory=dict)
    gsi_attribute: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    read_units_by_purpose: Counter[str] = field(default_factory=Counter)
    write_units_by_purpose: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, params: dict[str, Any]) -> None:
        """Count one call (a before-call hook)."""
        with self._lock:
            if not operation.startswith("dynamodb."):
                self.calls[operation] += 1
                return
            name = operation.removeprefix("dynamodb.")
            if name == "BatchGetItem":
                for table, spec in params["RequestItems"].items():
                    self.calls[f"dynamodb.{name}:{table}"] += 1
                    # Eventually consistent, items under 4 KB: half a unit per key, found or not.
                    self._read(table, {}, 0.5 * len(spec["Keys"]))
            elif name == "TransactWriteItems":
                # Each item of a transaction costs two write units per KB (prepare and commit).
                for entry in params["TransactItems"]:
                    ((kind, spec),) = entry.items()
                    table = spec.get("TableName", "?")
                    self.calls[f"dynamodb.{name}:{table}"] += 1
                    units = 2 * (write_units(item_size(spec["Item"])) if kind == "Put" else 1)
                    self.write_units[table] += units
                    self.write_units_by_purpose[purpose_of(self.roles.get(table, table), spec)] += units
            elif name == "BatchWriteItem":
                for table, requests in params["RequestItems"].items():
                    self.calls[f"dynamodb.{name}:{table}"] += 1
                    for request in requests:
                        item = request.get("PutRequest", {}).get("Item")
                        if item is not None:
                            self._write(table, item)
            else:
                table = params.get("TableName", "?")
                self.calls[f"dynamodb.{name}:{table}"] += 1
                if name == "PutItem":
                    self._write(table, params["Item"])
                elif name in ("UpdateItem", "DeleteItem"):
                    # The items touched here are small.
                    self.write_units[table] += 1
                    self.write_units_by_purpose[purpose_of(self.roles.get(table, table), params)] += 1
                elif name in ("GetItem", "Query"):
                    self._read(table, params, 1.0)

    def _read(self, table: str, params: dict[str, Any], units: float) -> None:
        self.read_units[table] += units  # type: ignore[assignment]
        self.read_units_by_purpose[purpose_of(self.roles.get(table, table), params)] += units  # type: ignore[assignment]

    def _write(self, table: str, item: dict[str, Any]) -> None:
        size = item_size(item)
        self.item_bytes.setdefault(table, []).append(size)
        self.write_units[table] += write_units(size)
        self.write_units_by_purpose[purpose_of(self.roles.get(table, table), {"Item": item})] += write_units(size)
        attribute = self.gsi_attribute.get(table)
        if attribute and attribute in item:
            # The keys-only index writes an entry of the table's keys and its own.
            keys = {name: value for name, value in item.items() if name in (attribute, *INDEX_KEY_ATTRIBUTES)}
            units = write_units(item_size(keys) + GSI_ENTRY_OVERHEAD_BYTES)
            self.gsi_write_units[table] += units
            self.write_units_by_purpose[f"index:{attribute}"] += units


@dataclass
class MotoStack:
    """The provisioned resources, and containers built on them."""

    config: MailwrightConfig
    resources: StackResources

    def hasher(self) -> AddressHasher:
        """The stack's address hasher (its keyring in moto's Secrets Manager), to seed suppressions as stored."""
        client = boto3.client("dynamodb", region_name="us-east-1")
        marker = DynamoAddressKeyMarker(client, self.resources.suppression_table)
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        return SecretAddressKeys(secrets, self.resources.address_key_secret_arn, marker).hasher()

    def session(
        self,
        *,
        before_call: list[Fault] | None = None,
        observe: list[Callable[[str, dict[str, Any]], None]] | None = None,
        after_call: list[Any] | None = None,
    ) -> Any:
        """A fresh boto3 session with hooks on every call (registered before any client exists).

        `observe` hooks see each call's operation and API parameters; `before_call`
        faults see the operation and the serialized request and may answer instead
        of the service (botocore's own retries are then skipped, so the fault
        reaches the adapter).
        """
        session = boto3.session.Session(region_name="us-east-1")
        faults = before_call if before_call is not None else []
        observers = observe if observe is not None else []

        def dispatch(model: Any, params: dict[str, Any], **_: Any) -> Any:
            operation = f"{model.service_model.service_name}.{model.name}"
            for fault in list(faults):
                answer = fault(operation, params)
                if answer is not None:
                    return answer
            return None

        def watch(params: dict[str, Any], model: Any, **_: Any) -> None:
            operation = f"{model.service_model.service_name}.{model.name}"
            for observer in observers:
                observer(operation, params)

        session.events.register("provide-client-params", watch)
        session.events.register("before-call", dispatch)
        for hook in after_call or []:
            session.events.register("after-call", hook)
        return session

    def environment(
        self, lane: str, *, send_rate: float | None = None, max_backoff: int | None = None
    ) -> dict[str, str]:
        """The lane worker's environment (as deployed), optionally with another send rate or backoff cap."""
        env = self.resources.worker_environment(self.config, lane)
        if not env.get(Env.UNSUBSCRIBE_BASE_URL):
            env[Env.UNSUBSCRIBE_BASE_URL] = "https://example.com/unsubscribe"
        if send_rate is not None:
            # The account's rate (every worker shares one bucket in DynamoDB) and the fallback share.
            env[Env.SES_MAX_SEND_RATE] = str(send_rate * self.config.total_max_concurrency)
            env[Env.SEND_RATE_PER_WORKER] = str(send_rate)
        if max_backoff is not None:
            env[Env.MAX_BACKOFF_SECONDS] = str(max_backoff)
        return env

    def container(
        self, lane: str, session: Any, *, send_rate: float | None = None, max_backoff: int | None = None
    ) -> SendService:
        """One emulated Lambda container's send service, from the deployed composition root."""
        settings = WorkerSettings.from_env(self.environment(lane, send_rate=send_rate, max_backoff=max_backoff))
        # moto has no SES GetAccount: the account allows the ceiling (or cdk.json's rate).
        account = FakeAccountReader(settings.ses_max_send_rate or self.config.ses_max_send_rate or 1.0)
        return build_send_service(settings, session=session, account_reader=account)

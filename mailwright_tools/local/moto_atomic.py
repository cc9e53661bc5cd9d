"""DynamoDB's single-item writes are atomic; moto's are not when threads share its backend.

moto evaluates a ConditionExpression and then applies the write in two steps,
so two threads can both pass `attribute_not_exists(...)` before either writes.
The local stack and the functional tests run many function invocations as
threads against one in-process moto, and the code under test relies on
DynamoDB's guarantee (the provider breaker's failure window, idempotency
claims, rate buckets). Holding one lock across each write restores it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_APPLIED = "mailwright_atomic"
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item", "execute_transaction")
_lock = threading.RLock()


def apply() -> None:
    """Make moto's DynamoDB writes atomic for this process (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, _APPLIED, False):
            continue
        setattr(DynamoDBBackend, name, _atomic(original))


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return write(*args, **kwargs)

    setattr(atomic, _APPLIED, True)
    return atomic
